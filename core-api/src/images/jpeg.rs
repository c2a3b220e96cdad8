//! JPEG: segments kept or dropped by marker, entropy-coded data copied as is, nothing after EOI.

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
        _ => {
            // Upright photos keep their compressed data, but only once it decodes.
            decode(&stripped.bytes)?;
            stripped
        }
    };
    Ok(CleanImage {
        bytes: Bytes::from(stripped.bytes),
        kind: ImageKind::Jpeg,
        width: stripped.width,
        height: stripped.height,
    })
}

/// Decodes the pixels (and the ICC profile), with the decoder's memory bounded.
fn decode(stripped: &[u8]) -> Result<(image::DynamicImage, Option<Vec<u8>>), ImageError> {
    use image::codecs::jpeg::JpegDecoder;
    use image::{DynamicImage, ImageDecoder, Limits};

    // The decoder is third-party code fed hostile input: a panic in it is a bad image, not a crash.
    let decoded = std::panic::catch_unwind(|| {
        let mut decoder = JpegDecoder::new(std::io::Cursor::new(stripped)).ok()?;
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(MAX_DECODE_BYTES);
        decoder.set_limits(limits).ok()?;
        let icc = decoder.icc_profile().ok().flatten();
        let image = DynamicImage::from_decoder(decoder).ok()?;
        Some((image, icc))
    })
    .ok()
    .flatten();
    decoded.ok_or(ImageError::NotAnImage)
}

/// Decodes, turns the pixels as EXIF `orientation` says and re-encodes, keeping an ICC profile
/// that still matches the pixels. `stripped` has passed [`strip`], so its size is within limits.
fn reorient(stripped: &[u8], orientation: u16) -> Result<Vec<u8>, ImageError> {
    use image::codecs::jpeg::JpegEncoder;
    use image::{DynamicImage, ImageEncoder};

    let transform = u8::try_from(orientation)
        .ok()
        .and_then(image::metadata::Orientation::from_exif)
        .ok_or(ImageError::NotAnImage)?;
    let (mut image, icc) = decode(stripped)?;
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
