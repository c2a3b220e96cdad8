//! Uploaded images: the type decided from the bytes, the container checked, all metadata removed,
//! every frame decoded, and anything larger than a phone screen shrunk.
//!
//! Photos carry EXIF (GPS position, camera serial numbers, time), XMP, IPTC and comments; none of it
//! may reach other members. Containers are walked by small parsers that read through
//! bounds-checked slices so no input can make them panic or over-read, and refuse from the
//! headers alone what is too large to decode ([`MAX_SOURCE_PIXELS`], [`MAX_SOURCE_SIDE`]:
//! `GLOBAL_008`). Then the pixels are decoded, every format, so bytes behind a valid header are
//! not taken for an image:
//!
//! - PNG is decoded row by row and always re-encoded (a new file: nothing of the upload's data
//!   stream survives). An APNG that fits [`MAX_SIDE`] has every frame decoded and written anew
//!   with its frame control (within [`MAX_ANIMATION_PIXELS`]); a larger or interlaced one keeps
//!   its still image only.
//! - JPEG is decoded with a scaled IDCT (a 7000-pixel photo at half size directly). An upright
//!   one that fits [`MAX_SIDE`] keeps its compressed data, undegraded, metadata segments removed;
//!   one to turn (EXIF orientation) or to shrink is re-encoded.
//! - GIF and WebP have every frame decoded. Those that fit [`MAX_SIDE`] keep their frames,
//!   metadata removed; larger ones keep their first frame only, shrunk, as a PNG (a WebP without
//!   transparency as a JPEG).
//!
//! Shrinking is by a whole factor (the mean of each factor × factor box) so the long side is at
//! most [`MAX_SIDE`]. Each decoder's memory is bounded by [`MAX_DECODE_BYTES`]; at most
//! [`Decodes`]' number of images are decoded at once in the process; and a decode stops when the
//! request that wanted it is gone (its time limit ended): decoders read their input through a
//! reader that fails once told to stop, and the loops over rows and frames check it too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use heart_shared::ErrorCode;

use crate::error::ApiError;

mod decode;
mod gif;
mod jpeg;
mod png;
mod webp;

pub use self::decode::Cancel;
use self::decode::{guarded, shrink_factor, Rgba, Shrink, Until};

/// The longest side a stored image has, in pixels: larger ones are shrunk to it.
pub const MAX_SIDE: u32 = 4096;

/// The most pixels (width × height) an upload may have: a 50-megapixel phone photo (8160×6120)
/// or a 7000×7000 picture. Larger ones are refused (`GLOBAL_008`) from their headers.
pub const MAX_SOURCE_PIXELS: u64 = 50_000_000;

/// The longest side an upload may have, in pixels (a JPEG's eighth-scale decode then fits
/// [`MAX_SIDE`] twice over).
pub const MAX_SOURCE_SIDE: u32 = 16_384;

/// The most memory one image's decoding may take (decoder buffers and the shrunk picture).
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// The most pixels all frames of a kept animation may have together (frames × canvas): decoding
/// them is bounded by the request's time limit too.
pub const MAX_ANIMATION_PIXELS: u64 = 1_000_000_000;

/// JPEG quality when a photo has to be re-encoded (turned or shrunk).
const REENCODE_QUALITY: u8 = 90;

/// The turns to decode images: at most `limit` at once in the process (`HEART_IMAGE_DECODES`;
/// six 7000-pixel JPEGs at once took 1.7 GB before there was a bound), with counters to see it.
#[derive(Debug, Clone)]
pub struct Decodes {
    permits: Arc<tokio::sync::Semaphore>,
    limit: usize,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    abandoned: Arc<AtomicUsize>,
}

impl Decodes {
    /// At most `limit` (at least one) decodes at once.
    pub fn new(limit: usize) -> Decodes {
        let limit = limit.max(1);
        Decodes {
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
            limit,
            running: Arc::default(),
            peak: Arc::default(),
            abandoned: Arc::default(),
        }
    }

    /// The bound.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Decodes holding a turn now (waiting ones not counted).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// The most decodes that ran at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Decodes stopped because their request was gone.
    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Turns free now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

/// Sets the flag when dropped: the future waiting for a decode is dropped when its request's time
/// limit ends (or the client goes), and the decode then stops.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// An accepted image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// PNG (and APNG).
    Png,
    /// JPEG.
    Jpeg,
    /// WebP, lossy, lossless or animated.
    Webp,
    /// GIF, still or animated.
    Gif,
}

impl ImageKind {
    /// The media type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Webp => "image/webp",
            ImageKind::Gif => "image/gif",
        }
    }

    /// The file extension used in storage keys.
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Webp => "webp",
            ImageKind::Gif => "gif",
        }
    }
}

/// The format named by the first bytes (magic numbers only; nothing else is checked).
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    if bytes.starts_with(PNG_SIGNATURE) {
        Some(ImageKind::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageKind::Jpeg)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some(ImageKind::Webp)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageKind::Gif)
    } else {
        None
    }
}

/// An image ready to store: metadata removed, orientation applied.
#[derive(Debug)]
pub struct CleanImage {
    /// The rewritten file.
    pub bytes: Bytes,
    /// Its format (the same as the upload's).
    pub kind: ImageKind,
    /// Width in pixels, as displayed.
    pub width: u32,
    /// Height in pixels, as displayed.
    pub height: u32,
}

/// Why an upload is not accepted as an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not one of the formats, or corrupt or truncated.
    #[error("not a PNG, JPEG, WebP or GIF image")]
    NotAnImage,
    /// Too many pixels (a decompression bomb, or just too big).
    #[error("image too large: {0}")]
    TooLarge(String),
    /// The picture could not be written out again.
    #[error("could not re-encode the image: {0}")]
    Reencode(String),
    /// Stopped half-way: nobody wants the result any more.
    #[error("image decoding abandoned")]
    Abandoned,
}

/// [`sanitize_until`] on the blocking pool, once `decodes` gives a turn; its errors as contract
/// errors: `GLOBAL_008` for an image too large, else `not_an_image` (the calling domain's code).
/// Dropping the future (the request's time limit) stops the decode and frees its turn.
pub async fn clean(
    decodes: &Decodes,
    bytes: Bytes,
    not_an_image: ErrorCode,
) -> Result<CleanImage, ApiError> {
    let permit = decodes
        .permits
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    let guard = CancelOnDrop(Cancel::new());
    let cancel = guard.0.clone();
    let (running, peak, abandoned) = (
        decodes.running.clone(),
        decodes.peak.clone(),
        decodes.abandoned.clone(),
    );
    let cleaned = tokio::task::spawn_blocking(move || {
        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        let result = sanitize_until(&bytes, &cancel);
        if matches!(result, Err(ImageError::Abandoned)) {
            abandoned.fetch_add(1, Ordering::SeqCst);
        }
        running.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        result
    })
    .await
    .map_err(ApiError::internal)?;
    drop(guard);
    cleaned.map_err(|error| match error {
        ImageError::TooLarge(detail) => ApiError::with_message(
            ErrorCode::PayloadTooLarge,
            format!("Image too large: {detail}"),
        ),
        ImageError::Abandoned => ApiError::internal(error),
        other => ApiError::with_message(not_an_image, other.to_string()),
    })
}

/// [`sanitize_until`] with nobody to stop it.
pub fn sanitize(bytes: &[u8]) -> Result<CleanImage, ImageError> {
    sanitize_until(bytes, &Cancel::new())
}

/// Checks `bytes` are a PNG, JPEG, WebP or GIF image by decoding it, and returns it without
/// metadata, with a JPEG's EXIF orientation applied to its pixels and shrunk to fit [`MAX_SIDE`].
/// Gives up with [`ImageError::Abandoned`] soon after `cancel` is set. CPU-bound: call it on the
/// blocking pool.
pub fn sanitize_until(bytes: &[u8], cancel: &Cancel) -> Result<CleanImage, ImageError> {
    match sniff(bytes).ok_or(ImageError::NotAnImage)? {
        ImageKind::Png => png::sanitize(bytes, cancel),
        ImageKind::Jpeg => jpeg::sanitize(bytes, cancel),
        ImageKind::Webp => webp::sanitize(bytes, cancel),
        ImageKind::Gif => gif::sanitize(bytes, cancel),
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// An upload's size, from its header: refused when too large to decode at all.
fn check_source(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::NotAnImage);
    }
    if width.max(height) > MAX_SOURCE_SIDE {
        return Err(ImageError::TooLarge(format!(
            "{width}×{height} pixels; the limit is {MAX_SOURCE_SIDE} on the long side"
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_SOURCE_PIXELS {
        return Err(ImageError::TooLarge(format!(
            "{width}×{height} pixels; the limit is {MAX_SOURCE_PIXELS}"
        )));
    }
    Ok(())
}

fn check_animation(frames: u64, width: u32, height: u32) -> Result<(), ImageError> {
    let pixels = frames.saturating_mul(u64::from(width) * u64::from(height));
    if pixels > MAX_ANIMATION_PIXELS {
        return Err(ImageError::TooLarge(format!(
            "{frames} frames of {width}×{height} pixels; the limit is {MAX_ANIMATION_PIXELS} in all"
        )));
    }
    Ok(())
}

/// Bounds-checked reads; every parser below goes through these, so a short input is an error.
fn slice(bytes: &[u8], start: usize, len: usize) -> Result<&[u8], ImageError> {
    start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or(ImageError::NotAnImage)
}

fn byte(bytes: &[u8], at: usize) -> Result<u8, ImageError> {
    bytes.get(at).copied().ok_or(ImageError::NotAnImage)
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], ImageError> {
    slice(bytes, at, N)?
        .try_into()
        .map_err(|_| ImageError::NotAnImage)
}

fn u16_be(bytes: &[u8], at: usize) -> Result<u16, ImageError> {
    Ok(u16::from_be_bytes(array(bytes, at)?))
}

fn u16_le(bytes: &[u8], at: usize) -> Result<u16, ImageError> {
    Ok(u16::from_le_bytes(array(bytes, at)?))
}

fn u32_be(bytes: &[u8], at: usize) -> Result<u32, ImageError> {
    Ok(u32::from_be_bytes(array(bytes, at)?))
}

fn u32_le(bytes: &[u8], at: usize) -> Result<u32, ImageError> {
    Ok(u32::from_le_bytes(array(bytes, at)?))
}

fn u24_le(bytes: &[u8], at: usize) -> Result<u32, ImageError> {
    let [a, b, c] = array(bytes, at)?;
    Ok(u32::from_le_bytes([a, b, c, 0]))
}

fn usize_from(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_sniffed_from_magic_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(ImageKind::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageKind::Jpeg));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"GIF89a...."), Some(ImageKind::Gif));
        assert_eq!(sniff(b"GIF87a...."), Some(ImageKind::Gif));
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
    }

    #[test]
    fn kinds_name_their_type_and_extension() {
        let all = [
            ImageKind::Png,
            ImageKind::Jpeg,
            ImageKind::Webp,
            ImageKind::Gif,
        ];
        let names: Vec<_> = all.iter().map(|k| (k.mime(), k.extension())).collect();
        assert_eq!(
            names,
            [
                ("image/png", "png"),
                ("image/jpeg", "jpg"),
                ("image/webp", "webp"),
                ("image/gif", "gif")
            ]
        );
    }

    fn tiff_with_orientation(big_endian: bool, orientation: u16) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut t = Vec::new();
        t.extend_from_slice(if big_endian { b"MM" } else { b"II" });
        t.extend_from_slice(&u16b(42));
        t.extend_from_slice(&u32b(8));
        t.extend_from_slice(&u16b(2));
        // ImageWidth (LONG 640), then Orientation (SHORT).
        t.extend_from_slice(&u16b(0x0100));
        t.extend_from_slice(&u16b(4));
        t.extend_from_slice(&u32b(1));
        t.extend_from_slice(&u32b(640));
        t.extend_from_slice(&u16b(0x0112));
        t.extend_from_slice(&u16b(3));
        t.extend_from_slice(&u32b(1));
        t.extend_from_slice(&u16b(orientation));
        t.extend_from_slice(&[0, 0]);
        t.extend_from_slice(&u32b(0));
        t
    }

    #[test]
    fn orientation_is_read_from_either_byte_order() {
        assert_eq!(
            jpeg::exif_orientation(&tiff_with_orientation(true, 6)),
            Some(6)
        );
        assert_eq!(
            jpeg::exif_orientation(&tiff_with_orientation(false, 8)),
            Some(8)
        );
        assert_eq!(
            jpeg::exif_orientation(&tiff_with_orientation(false, 9)),
            None
        );
        let tiff = tiff_with_orientation(false, 3);
        for cut in 0..tiff.len() {
            let _ = jpeg::exif_orientation(&tiff[..cut]);
        }
        assert_eq!(jpeg::exif_orientation(b"II\x2a\0\xff\xff\xff\xff"), None);
    }

    #[test]
    fn pixel_limits() {
        assert!(check_source(4096, 4096).is_ok());
        assert!(check_source(7000, 7000).is_ok());
        assert!(check_source(8160, 6120).is_ok());
        assert!(check_source(16_384, 3000).is_ok());
        assert!(matches!(
            check_source(16_385, 10),
            Err(ImageError::TooLarge(_))
        ));
        assert!(matches!(
            check_source(7100, 7100),
            Err(ImageError::TooLarge(_))
        ));
        assert!(matches!(
            check_source(60_000, 60_000),
            Err(ImageError::TooLarge(_))
        ));
        assert!(matches!(check_source(0, 10), Err(ImageError::NotAnImage)));
        assert!(matches!(
            check_animation(u64::MAX, 65_535, 65_535),
            Err(ImageError::TooLarge(_))
        ));
    }

    #[test]
    fn reads_never_go_out_of_bounds() {
        let bytes = [1u8, 2, 3];
        assert!(slice(&bytes, usize::MAX, 2).is_err());
        assert!(slice(&bytes, 2, 2).is_err());
        assert!(u32_be(&bytes, 0).is_err());
        assert_eq!(u16_le(&bytes, 1).ok(), Some(0x0302));
        assert!(byte(&bytes, 3).is_err());
    }
}
