//! Uploaded images: the type decided from the bytes, the container checked, all metadata removed.
//!
//! Photos carry EXIF (GPS position, camera serial numbers, time), XMP, IPTC and comments; none of it
//! may reach other members. Each container is rewritten keeping only what is needed to show the
//! picture (pixels, palette, transparency, colour profile, animation), by small parsers that read
//! through bounds-checked slices so no input can make them panic or over-read. Pixels are decoded
//! only for a JPEG whose EXIF orientation is not "upright", because once EXIF is gone the rotation
//! must live in the pixels; everything else keeps its original compressed data, undegraded.
//!
//! Images whose long side is over [`MAX_SIDE`] pixels (a phone screen needs no more) are refused
//! from their headers, before anything is decoded: `GLOBAL_008`. They are refused, not
//! downscaled: a downscale would decode up to [`MAX_PIXELS`] first, the cost an attacker wants.
//! Within the limit, the data is decoded to be validated: JPEG pixels are decoded (bounded
//! memory: [`MAX_DECODE_BYTES`]), a PNG's compressed stream is inflated and checked against its
//! header. At most [`max_concurrent_decodes`] images are worked on at once.

use bytes::Bytes;
use heart_shared::ErrorCode;

use crate::error::ApiError;

mod gif;
mod jpeg;
mod png;
mod webp;

/// The longest side an image may have, in pixels.
pub const MAX_SIDE: u32 = 4096;

/// The most pixels (width × height) an image may have: a [`MAX_SIDE`] square.
pub const MAX_PIXELS: u64 = (MAX_SIDE as u64) * (MAX_SIDE as u64);

/// The most memory a decoder may allocate for one image: a [`MAX_SIDE`] square of RGBA, plus slack.
pub const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 4 + 8 * 1024 * 1024;

/// How many images are sanitised at once in the whole process: one per core. Others wait for a
/// turn (within their request's time limit): six 7000-pixel JPEGs at once took 1.7 GB before.
pub fn max_concurrent_decodes() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

static DECODES: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::OnceLock::new();

fn decode_permits() -> std::sync::Arc<tokio::sync::Semaphore> {
    DECODES
        .get_or_init(|| std::sync::Arc::new(tokio::sync::Semaphore::new(max_concurrent_decodes())))
        .clone()
}

/// The most pixels all frames of an animation may have together (frames × canvas).
pub const MAX_ANIMATION_PIXELS: u64 = 1_000_000_000;

/// JPEG quality when a photo has to be re-encoded to apply its orientation.
const REENCODE_QUALITY: u8 = 90;

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
    /// The orientation could not be applied: the re-encoding failed.
    #[error("could not re-encode the image: {0}")]
    Reencode(String),
}

/// [`sanitize`] on the blocking pool, its errors as contract errors: `GLOBAL_008` for an image too
/// large, else `not_an_image` (the calling domain's code).
pub async fn clean(bytes: Bytes, not_an_image: ErrorCode) -> Result<CleanImage, ApiError> {
    // Waiting for a turn ends with the request's time limit (this future is dropped then); the
    // permit goes with the work, so a decode outliving its request still counts until it ends.
    let permit = decode_permits()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    let cleaned = tokio::task::spawn_blocking(move || {
        let result = sanitize(&bytes);
        drop(permit);
        result
    })
    .await
    .map_err(ApiError::internal)?;
    cleaned.map_err(|error| match error {
        ImageError::TooLarge(detail) => ApiError::with_message(
            ErrorCode::PayloadTooLarge,
            format!("Image too large: {detail}"),
        ),
        other => ApiError::with_message(not_an_image, other.to_string()),
    })
}

/// Checks `bytes` are a PNG, JPEG, WebP or GIF image and returns it without metadata, with a JPEG's
/// EXIF orientation applied to its pixels. CPU-bound: call it on the blocking pool.
pub fn sanitize(bytes: &[u8]) -> Result<CleanImage, ImageError> {
    match sniff(bytes).ok_or(ImageError::NotAnImage)? {
        ImageKind::Png => png::sanitize(bytes),
        ImageKind::Jpeg => jpeg::sanitize(bytes),
        ImageKind::Webp => webp::sanitize(bytes),
        ImageKind::Gif => gif::sanitize(bytes),
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn check_pixels(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::NotAnImage);
    }
    if width.max(height) > MAX_SIDE {
        return Err(ImageError::TooLarge(format!(
            "{width}×{height} pixels; the limit is {MAX_SIDE} on the long side"
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(ImageError::TooLarge(format!(
            "{width}×{height} pixels; the limit is {MAX_PIXELS}"
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
        assert!(check_pixels(4096, 4096).is_ok());
        assert!(check_pixels(4096, 3072).is_ok());
        assert!(matches!(
            check_pixels(4097, 10),
            Err(ImageError::TooLarge(_))
        ));
        assert!(matches!(
            check_pixels(7000, 7000),
            Err(ImageError::TooLarge(_))
        ));
        assert!(matches!(
            check_pixels(60_000, 60_000),
            Err(ImageError::TooLarge(_))
        ));
        assert!(matches!(check_pixels(0, 10), Err(ImageError::NotAnImage)));
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
