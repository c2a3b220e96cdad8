//! Uploaded images: the type decided from the bytes, the container checked, all metadata removed.
//!
//! Photos carry EXIF (GPS position, camera serial numbers, time), XMP, IPTC and comments; none of it
//! may reach other members. Each container is rewritten keeping only what is needed to show the
//! picture (pixels, palette, transparency, colour profile, animation), by small parsers that read
//! through bounds-checked slices so no input can make them panic or over-read. Pixels are decoded
//! only for a JPEG whose EXIF orientation is not "upright", because once EXIF is gone the rotation
//! must live in the pixels; everything else keeps its original compressed data, undegraded.
//!
//! Images larger than [`MAX_PIXELS`] are refused from their headers, before anything is decoded.

use bytes::Bytes;

/// The most pixels (width × height) an image may have: about a 8660×5773 photo.
pub const MAX_PIXELS: u64 = 50_000_000;

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

/// JPEG: segments kept or dropped by marker, entropy-coded data copied as is, nothing after EOI.
mod jpeg {
    use super::*;

    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    const APP0: u8 = 0xE0;
    const APP1: u8 = 0xE1;
    const APP2: u8 = 0xE2;
    const APP14: u8 = 0xEE;
    // COM (0xFE) comments, like every APPn not named here, are dropped by `keep_segment`.

    /// A JPEG rewritten without metadata, and what was learnt on the way.
    pub(super) struct Stripped {
        pub(super) bytes: Vec<u8>,
        pub(super) width: u32,
        pub(super) height: u32,
        /// The EXIF orientation (1–8) of the first Exif segment, if any.
        pub(super) orientation: Option<u16>,
    }

    fn is_start_of_frame(marker: u8) -> bool {
        matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
    }

    /// Whether a segment may stay: the frame, tables, restart interval and scans, plus JFIF, the
    /// ICC profile and Adobe's colour transform, which describe how to show the pixels. Everything
    /// else is metadata (Exif, XMP, IPTC, MPF, comments, maker notes, JFXX thumbnails) or nothing a
    /// decoder reads (JPEG extensions `JPGn`, reserved markers), which could carry any bytes.
    fn keep_segment(marker: u8, payload: &[u8]) -> bool {
        match marker {
            APP0 => payload.starts_with(b"JFIF\0"),
            APP2 => payload.starts_with(b"ICC_PROFILE\0"),
            APP14 => payload.starts_with(b"Adobe"),
            // SOFn, DHT, DAC; SOS, DQT, DNL, DRI, DHP, EXP.
            0xC0..=0xCF | 0xDA..=0xDF => true,
            _ => false,
        }
    }

    pub(super) fn strip(input: &[u8]) -> Result<Stripped, ImageError> {
        if input.get(..2) != Some(&[0xFF, SOI]) {
            return Err(ImageError::NotAnImage);
        }
        let mut out = Vec::with_capacity(input.len());
        out.extend_from_slice(&[0xFF, SOI]);
        let mut pos = 2;
        let mut frame: Option<(u32, u32)> = None;
        let mut orientation = None;
        let mut seen_exif = false;
        loop {
            if byte(input, pos)? != 0xFF {
                return Err(ImageError::NotAnImage);
            }
            // Any number of 0xFF fill bytes may precede a marker.
            while byte(input, pos)? == 0xFF {
                pos += 1;
            }
            let marker = byte(input, pos)?;
            pos += 1;
            match marker {
                EOI => {
                    out.extend_from_slice(&[0xFF, EOI]);
                    break;
                }
                0x00 | SOI => return Err(ImageError::NotAnImage),
                // Markers without a length.
                0x01 | 0xD0..=0xD7 => {
                    out.extend_from_slice(&[0xFF, marker]);
                    continue;
                }
                _ => {}
            }
            let len = usize::from(u16_be(input, pos)?);
            if len < 2 {
                return Err(ImageError::NotAnImage);
            }
            let segment = slice(input, pos, len)?;
            let payload = segment.get(2..).unwrap_or_default();
            let end = pos + len;
            if marker == APP1 && !seen_exif && payload.starts_with(b"Exif\0\0") {
                seen_exif = true;
                orientation = payload.get(6..).and_then(exif_orientation);
            }
            if is_start_of_frame(marker) {
                // One frame only: a second one (hierarchical JPEG, or a crafted file) could make a
                // decoder use a size other than the one checked here.
                if frame.is_some() {
                    return Err(ImageError::NotAnImage);
                }
                // precision(1) height(2) width(2) components(1)
                let height = u32::from(u16_be(payload, 1)?);
                let width = u32::from(u16_be(payload, 3)?);
                check_pixels(width, height)?;
                frame = Some((width, height));
            }
            if keep_segment(marker, payload) {
                out.extend_from_slice(&[0xFF, marker]);
                out.extend_from_slice(segment);
            }
            pos = end;
            if marker == SOS {
                if frame.is_none() {
                    return Err(ImageError::NotAnImage);
                }
                let data_end = entropy_coded_end(input, pos)?;
                out.extend_from_slice(slice(input, pos, data_end - pos)?);
                pos = data_end;
            }
        }
        let (width, height) = frame.ok_or(ImageError::NotAnImage)?;
        Ok(Stripped {
            bytes: out,
            width,
            height,
            orientation,
        })
    }

    /// Where a scan's entropy-coded data ends: at the first marker other than a stuffed 0xFF00 or
    /// a restart marker. Running out of input first means the file is truncated.
    fn entropy_coded_end(input: &[u8], start: usize) -> Result<usize, ImageError> {
        let mut pos = start;
        loop {
            let rest = input.get(pos..).ok_or(ImageError::NotAnImage)?;
            let ff = rest
                .iter()
                .position(|&b| b == 0xFF)
                .ok_or(ImageError::NotAnImage)?;
            let at = pos + ff;
            match byte(input, at + 1)? {
                0x00 | 0xD0..=0xD7 => pos = at + 2,
                0xFF => pos = at + 1,
                _ => return Ok(at),
            }
        }
    }

    /// The Orientation (tag 0x0112) of IFD0 in a TIFF structure, the body of an Exif segment.
    pub(super) fn exif_orientation(tiff: &[u8]) -> Option<u16> {
        let big_endian = match tiff.get(..2)? {
            b"MM" => true,
            b"II" => false,
            _ => return None,
        };
        let read_u16 = |at: usize| {
            let b: [u8; 2] = array(tiff, at).ok()?;
            Some(if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            })
        };
        let read_u32 = |at: usize| {
            let b: [u8; 4] = array(tiff, at).ok()?;
            Some(if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        if read_u16(2)? != 42 {
            return None;
        }
        let ifd0 = usize::try_from(read_u32(4)?).ok()?;
        let entries = read_u16(ifd0)?;
        for index in 0..usize::from(entries) {
            let entry = ifd0.checked_add(2 + 12 * index)?;
            if read_u16(entry)? == 0x0112 {
                // type SHORT, count 1: the value sits in the first two bytes of the value field.
                if read_u16(entry + 2)? != 3 {
                    return None;
                }
                return read_u16(entry + 8).filter(|o| (1..=8).contains(o));
            }
        }
        None
    }

    pub(super) fn sanitize(input: &[u8]) -> Result<CleanImage, ImageError> {
        let stripped = strip(input)?;
        let stripped = match stripped.orientation {
            Some(orientation @ 2..=8) => strip(&reorient(&stripped.bytes, orientation)?)?,
            _ => stripped,
        };
        Ok(CleanImage {
            bytes: Bytes::from(stripped.bytes),
            kind: ImageKind::Jpeg,
            width: stripped.width,
            height: stripped.height,
        })
    }

    /// Decodes, turns the pixels as EXIF `orientation` says and re-encodes, keeping an ICC profile
    /// that still matches the pixels. `stripped` has passed [`strip`], so its size is within limits.
    fn reorient(stripped: &[u8], orientation: u16) -> Result<Vec<u8>, ImageError> {
        use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
        use image::{DynamicImage, ImageDecoder, ImageEncoder};

        let transform = u8::try_from(orientation)
            .ok()
            .and_then(image::metadata::Orientation::from_exif)
            .ok_or(ImageError::NotAnImage)?;
        // The decoder is third-party code fed hostile input: a panic in it is a bad image, not a crash.
        let decoded = std::panic::catch_unwind(|| {
            let mut decoder = JpegDecoder::new(std::io::Cursor::new(stripped)).ok()?;
            let icc = decoder.icc_profile().ok().flatten();
            let image = DynamicImage::from_decoder(decoder).ok()?;
            Some((image, icc))
        })
        .ok()
        .flatten();
        let (mut image, icc) = decoded.ok_or(ImageError::NotAnImage)?;
        image.apply_orientation(transform);
        let grey = !image.color().has_color();
        let image = if grey {
            DynamicImage::ImageLuma8(image.to_luma8())
        } else {
            DynamicImage::ImageRgb8(image.to_rgb8())
        };
        let mut out = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut out, REENCODE_QUALITY);
        // A CMYK profile would be wrong for the RGB pixels the decoder produced: keep matching ones only.
        let wanted_space: &[u8] = if grey { b"GRAY" } else { b"RGB " };
        if let Some(icc) = icc.filter(|p| p.get(16..20) == Some(wanted_space)) {
            let _ = encoder.set_icc_profile(icc);
        }
        encoder
            .write_image(
                image.as_bytes(),
                image.width(),
                image.height(),
                image.color().into(),
            )
            .map_err(|e| ImageError::Reencode(e.to_string()))?;
        Ok(out)
    }
}

/// PNG: chunks kept by type (critical ones and those that affect rendering), CRCs checked.
mod png {
    use super::*;

    /// Ancillary chunks that change how the pixels look or move; all others (tEXt, zTXt, iTXt,
    /// eXIf, tIME and private ones) are dropped.
    const KEPT_ANCILLARY: &[&[u8; 4]] = &[
        b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs", b"hIST", b"sPLT",
        b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCv", b"cLLi",
    ];

    fn valid_header(ihdr: &[u8]) -> Result<(u32, u32), ImageError> {
        if ihdr.len() != 13 {
            return Err(ImageError::NotAnImage);
        }
        let width = u32_be(ihdr, 0)?;
        let height = u32_be(ihdr, 4)?;
        let (depth, color) = (byte(ihdr, 8)?, byte(ihdr, 9)?);
        let depth_ok = match color {
            0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
            3 => matches!(depth, 1 | 2 | 4 | 8),
            2 | 4 | 6 => matches!(depth, 8 | 16),
            _ => false,
        };
        let methods_ok = byte(ihdr, 10)? == 0 && byte(ihdr, 11)? == 0 && byte(ihdr, 12)? <= 1;
        if !depth_ok || !methods_ok || width > 0x7FFF_FFFF || height > 0x7FFF_FFFF {
            return Err(ImageError::NotAnImage);
        }
        check_pixels(width, height)?;
        Ok((width, height))
    }

    pub(super) fn sanitize(input: &[u8]) -> Result<CleanImage, ImageError> {
        let mut out = Vec::with_capacity(input.len());
        out.extend_from_slice(PNG_SIGNATURE);
        let mut pos = PNG_SIGNATURE.len();
        let mut size = None;
        let mut seen_idat = false;
        loop {
            let len = usize_from(u32_be(input, pos)?);
            let chunk_type: [u8; 4] = array(input, pos + 4)?;
            let data = slice(input, pos + 8, len)?;
            let crc = u32_be(input, pos + 8 + len)?;
            let whole = slice(input, pos, 12 + len)?;
            pos += 12 + len;
            if !chunk_type.iter().all(u8::is_ascii_alphabetic) {
                return Err(ImageError::NotAnImage);
            }
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&chunk_type);
            hasher.update(data);
            let crc_ok = hasher.finalize() == crc;
            let critical = chunk_type[0].is_ascii_uppercase();
            if size.is_none() {
                if &chunk_type != b"IHDR" || !crc_ok {
                    return Err(ImageError::NotAnImage);
                }
                size = Some(valid_header(data)?);
            } else if critical {
                match &chunk_type {
                    b"IDAT" | b"PLTE" | b"IEND" if crc_ok => {}
                    _ => return Err(ImageError::NotAnImage),
                }
            } else if !crc_ok || !KEPT_ANCILLARY.contains(&&chunk_type) {
                continue;
            }
            if &chunk_type == b"acTL" {
                if let (Some((width, height)), Ok(frames)) = (size, u32_be(data, 0)) {
                    check_animation(u64::from(frames), width, height)?;
                }
            }
            seen_idat |= &chunk_type == b"IDAT";
            out.extend_from_slice(whole);
            if &chunk_type == b"IEND" {
                break;
            }
        }
        let (width, height) = size.ok_or(ImageError::NotAnImage)?;
        if !seen_idat {
            return Err(ImageError::NotAnImage);
        }
        Ok(CleanImage {
            bytes: Bytes::from(out),
            kind: ImageKind::Png,
            width,
            height,
        })
    }
}

/// WebP: RIFF chunks kept by FourCC, the VP8X flags fixed to match.
mod webp {
    use super::*;

    const KEPT: [&[u8; 4]; 7] = [
        b"VP8X", b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF", b"ICCP",
    ];
    const FLAG_ICC: u8 = 0x20;
    const FLAG_EXIF: u8 = 0x08;
    const FLAG_XMP: u8 = 0x04;
    const FLAG_ANIMATION: u8 = 0x02;

    /// The size a lossy (VP8) or lossless (VP8L) bitstream declares.
    fn bitstream_size(chunk_type: &[u8; 4], data: &[u8]) -> Result<(u32, u32), ImageError> {
        match chunk_type {
            b"VP8 " => {
                // frame tag(3), start code 9d 01 2a, then 14-bit width and height.
                if slice(data, 3, 3)? != [0x9D, 0x01, 0x2A] {
                    return Err(ImageError::NotAnImage);
                }
                Ok((
                    u32::from(u16_le(data, 6)? & 0x3FFF),
                    u32::from(u16_le(data, 8)? & 0x3FFF),
                ))
            }
            _ => {
                // signature 0x2f, then 14-bit width-1, 14-bit height-1, alpha bit, 3-bit version 0.
                let bits = u32_le(data, 1)?;
                if byte(data, 0)? != 0x2F || bits >> 29 != 0 {
                    return Err(ImageError::NotAnImage);
                }
                Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
            }
        }
    }

    pub(super) fn sanitize(input: &[u8]) -> Result<CleanImage, ImageError> {
        let riff_size = usize_from(u32_le(input, 4)?);
        let body = slice(input, 8, riff_size)?;
        if body.get(..4) != Some(b"WEBP") {
            return Err(ImageError::NotAnImage);
        }
        let mut chunks: Vec<([u8; 4], &[u8])> = Vec::new();
        let mut pos = 4;
        while pos < body.len() {
            let chunk_type: [u8; 4] = array(body, pos)?;
            let len = usize_from(u32_le(body, pos + 4)?);
            let data = slice(body, pos + 8, len)?;
            // Chunks are padded to an even size; a missing pad byte at the very end is tolerated.
            pos += 8 + len + (len & 1);
            chunks.push((chunk_type, data));
        }
        let (first_type, first_data) = *chunks.first().ok_or(ImageError::NotAnImage)?;
        let (width, height) = match &first_type {
            b"VP8X" => {
                let flags = byte(first_data, 0)?;
                let size = (u24_le(first_data, 4)? + 1, u24_le(first_data, 7)? + 1);
                check_pixels(size.0, size.1)?;
                let mut frames: u64 = 0;
                let mut bitstreams = 0;
                for (chunk_type, data) in &chunks {
                    match chunk_type {
                        // x(3) y(3) width-1(3) height-1(3) duration(3) flags(1), then the frame.
                        b"ANMF" => {
                            check_pixels(u24_le(data, 6)? + 1, u24_le(data, 9)? + 1)?;
                            frames += 1;
                        }
                        b"VP8 " | b"VP8L" => {
                            let (w, h) = bitstream_size(chunk_type, data)?;
                            check_pixels(w, h)?;
                            bitstreams += 1;
                        }
                        _ => {}
                    }
                }
                if flags & FLAG_ANIMATION != 0 && frames > 0 {
                    check_animation(frames, size.0, size.1)?;
                } else if bitstreams == 0 {
                    return Err(ImageError::NotAnImage);
                }
                size
            }
            b"VP8 " | b"VP8L" => {
                let (w, h) = bitstream_size(&first_type, first_data)?;
                check_pixels(w, h)?;
                (w, h)
            }
            _ => return Err(ImageError::NotAnImage),
        };
        let has_icc = chunks.iter().any(|(t, _)| t == b"ICCP");
        let mut out = Vec::with_capacity(input.len());
        out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
        for (chunk_type, data) in chunks.iter().filter(|(t, _)| KEPT.contains(&t)) {
            out.extend_from_slice(chunk_type);
            out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
            let start = out.len();
            out.extend_from_slice(data);
            if chunk_type == b"VP8X" {
                if let Some(flags) = out.get_mut(start) {
                    *flags &= !(FLAG_EXIF | FLAG_XMP | FLAG_ICC);
                    if has_icc {
                        *flags |= FLAG_ICC;
                    }
                }
            }
            if data.len() % 2 == 1 {
                out.push(0);
            }
        }
        let riff_size = u32::try_from(out.len() - 8).map_err(|_| ImageError::NotAnImage)?;
        if let Some(size_field) = out.get_mut(4..8) {
            size_field.copy_from_slice(&riff_size.to_le_bytes());
        }
        Ok(CleanImage {
            bytes: Bytes::from(out),
            kind: ImageKind::Webp,
            width,
            height,
        })
    }
}

/// GIF: blocks walked one by one; comments and foreign application extensions dropped.
mod gif {
    use super::*;

    const IMAGE: u8 = 0x2C;
    const EXTENSION: u8 = 0x21;
    const TRAILER: u8 = 0x3B;
    const GRAPHIC_CONTROL: u8 = 0xF9;
    const APPLICATION: u8 = 0xFF;

    /// The end of a run of data sub-blocks starting at `pos` (after its zero terminator).
    fn sub_blocks_end(input: &[u8], mut pos: usize) -> Result<usize, ImageError> {
        loop {
            let len = usize::from(byte(input, pos)?);
            pos += 1;
            if len == 0 {
                return Ok(pos);
            }
            slice(input, pos, len)?;
            pos += len;
        }
    }

    fn color_table_len(packed: u8) -> usize {
        if packed & 0x80 == 0 {
            0
        } else {
            3 << ((packed & 0x07) + 1)
        }
    }

    pub(super) fn sanitize(input: &[u8]) -> Result<CleanImage, ImageError> {
        // header(6), logical screen descriptor: width, height, packed, background, aspect.
        let width = u32::from(u16_le(input, 6)?);
        let height = u32::from(u16_le(input, 8)?);
        check_pixels(width, height)?;
        let mut pos = 13 + color_table_len(byte(input, 10)?);
        let mut out = Vec::with_capacity(input.len());
        out.extend_from_slice(slice(input, 0, pos)?);
        let mut frames: u64 = 0;
        loop {
            let block_start = pos;
            match byte(input, pos)? {
                IMAGE => {
                    // left, top, width, height, packed; local colour table; LZW minimum code size.
                    let frame_width = u32::from(u16_le(input, pos + 5)?);
                    let frame_height = u32::from(u16_le(input, pos + 7)?);
                    check_pixels(frame_width, frame_height)?;
                    pos += 10 + color_table_len(byte(input, pos + 9)?);
                    if !(1..=11).contains(&byte(input, pos)?) {
                        return Err(ImageError::NotAnImage);
                    }
                    pos = sub_blocks_end(input, pos + 1)?;
                    frames += 1;
                    check_animation(frames, width, height)?;
                    out.extend_from_slice(slice(input, block_start, pos - block_start)?);
                }
                EXTENSION => {
                    let label = byte(input, pos + 1)?;
                    let first_block = slice(input, pos + 3, usize::from(byte(input, pos + 2)?))?;
                    pos = sub_blocks_end(input, pos + 2)?;
                    // Looping is part of an animation; other application data (XMP, ICC, ...),
                    // comments and plain text are not needed to show it.
                    let keep = match label {
                        GRAPHIC_CONTROL => true,
                        APPLICATION => {
                            first_block == b"NETSCAPE2.0" || first_block == b"ANIMEXTS1.0"
                        }
                        _ => false,
                    };
                    if keep {
                        out.extend_from_slice(slice(input, block_start, pos - block_start)?);
                    }
                }
                TRAILER => {
                    out.push(TRAILER);
                    break;
                }
                _ => return Err(ImageError::NotAnImage),
            }
        }
        if frames == 0 {
            return Err(ImageError::NotAnImage);
        }
        Ok(CleanImage {
            bytes: Bytes::from(out),
            kind: ImageKind::Gif,
            width,
            height,
        })
    }
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
        assert!(check_pixels(7071, 7071).is_ok());
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
