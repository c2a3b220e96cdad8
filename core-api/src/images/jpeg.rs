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
            check_source(width, height)?;
            if matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE) {
                check_progressive_memory(payload, width, height)?;
            }
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

/// A progressive JPEG is decoded by keeping every coefficient of the whole picture (two bytes
/// per sample, whatever the output scale) until its last scan: refused when that is over
/// [`MAX_DECODE_BYTES`] (a 7000×7000 4:2:0 photo needs 147 MB; 4:4:4, 294 MB).
fn check_progressive_memory(sof: &[u8], width: u32, height: u32) -> Result<(), ImageError> {
    let components = usize::from(byte(sof, 5)?);
    let sampling: Vec<(u64, u64)> = (0..components)
        .map(|i| byte(sof, 7 + 3 * i).map(|hv| (u64::from(hv >> 4), u64::from(hv & 0x0F))))
        .collect::<Result<_, _>>()?;
    let max_h = sampling.iter().map(|s| s.0).max().unwrap_or(1).max(1);
    let max_v = sampling.iter().map(|s| s.1).max().unwrap_or(1).max(1);
    let mcus_across = u64::from(width).div_ceil(8 * max_h);
    let mcus_down = u64::from(height).div_ceil(8 * max_v);
    let bytes: u64 = sampling
        .iter()
        .map(|(h, v)| mcus_across * h * mcus_down * v * 64 * 2)
        .sum();
    if bytes > MAX_DECODE_BYTES {
        return Err(ImageError::TooLarge(format!(
            "a progressive {width}×{height} JPEG needs {} MB to decode",
            bytes / 1_000_000
        )));
    }
    Ok(())
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

pub(super) fn sanitize(input: &[u8], cancel: &Cancel) -> Result<CleanImage, ImageError> {
    let stripped = strip(input)?;
    let (width, height) = (stripped.width, stripped.height);
    let orientation = stripped.orientation.filter(|o| (2..=8).contains(o));
    if orientation.is_none() && width.max(height) <= MAX_SIDE {
        // Upright and small enough: the compressed data stays, undegraded, once every scan
        // decodes. The entropy-coded data is what is checked, so an eighth-scale decode will do.
        decode(&stripped.bytes, 8, cancel)?;
        return Ok(CleanImage {
            bytes: Bytes::from(stripped.bytes),
            kind: ImageKind::Jpeg,
            width,
            height,
        });
    }
    // Scaled IDCT: a 7000-pixel photo is decoded at half size directly, never at full size.
    let scale = shrink_factor(width, height).next_power_of_two();
    if scale > 8 {
        return Err(ImageError::TooLarge(format!("{width}×{height} pixels")));
    }
    let (mut image, icc) = decode(&stripped.bytes, scale, cancel)?;
    if let Some(transform) = orientation
        .and_then(|o| u8::try_from(o).ok())
        .and_then(image::metadata::Orientation::from_exif)
    {
        image.apply_orientation(transform);
    }
    cancel.check()?;
    let rgba = image.to_rgba8();
    let rgba = Rgba {
        width: rgba.width(),
        height: rgba.height(),
        pixels: rgba.into_raw(),
    };
    let encoded = strip(&rgba.to_jpeg(icc)?)?;
    Ok(CleanImage {
        bytes: Bytes::from(encoded.bytes),
        kind: ImageKind::Jpeg,
        width: encoded.width,
        height: encoded.height,
    })
}

/// Decodes the pixels at 1/`scale` of their size (1, 2, 4 or 8: the IDCT itself scales, so the
/// full-size picture is never in memory), and the ICC profile. Stops when `cancel` is set: the
/// scans are read from the input byte by byte as they are decoded.
fn decode(
    stripped: &[u8],
    scale: u32,
    cancel: &Cancel,
) -> Result<(image::DynamicImage, Option<Vec<u8>>), ImageError> {
    use image::{DynamicImage, GrayImage, RgbImage};
    use jpeg_decoder::PixelFormat;

    let (pixels, info, icc) = guarded(|| {
        let mut decoder = jpeg_decoder::Decoder::new(Until::new(stripped, cancel));
        decoder.set_max_decoding_buffer_size(usize::try_from(MAX_DECODE_BYTES).unwrap_or(0));
        decoder
            .read_info()
            .map_err(|_| cancel.or(ImageError::NotAnImage))?;
        let info = decoder.info().ok_or(ImageError::NotAnImage)?;
        let wanted = |side: u16| side.div_ceil(u16::try_from(scale).unwrap_or(8)).max(1);
        decoder
            .scale(wanted(info.width), wanted(info.height))
            .map_err(|_| ImageError::NotAnImage)?;
        let pixels = decoder
            .decode()
            .map_err(|_| cancel.or(ImageError::NotAnImage))?;
        let info = decoder.info().ok_or(ImageError::NotAnImage)?;
        Ok((pixels, info, decoder.icc_profile()))
    })?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let image = match info.pixel_format {
        PixelFormat::L8 => GrayImage::from_raw(width, height, pixels).map(DynamicImage::from),
        // Big-endian samples: the high byte is the 8-bit value.
        PixelFormat::L16 => {
            GrayImage::from_raw(width, height, pixels.into_iter().step_by(2).collect())
                .map(DynamicImage::from)
        }
        PixelFormat::RGB24 => RgbImage::from_raw(width, height, pixels).map(DynamicImage::from),
        PixelFormat::CMYK32 => {
            let rgb = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(255 - p.get(3).copied().unwrap_or(0));
                    [0, 1, 2].map(|i| {
                        let c = u16::from(255 - p.get(i).copied().unwrap_or(0));
                        u8::try_from(c * k / 255).unwrap_or(u8::MAX)
                    })
                })
                .collect();
            RgbImage::from_raw(width, height, rgb).map(DynamicImage::from)
        }
    };
    Ok((image.ok_or(ImageError::NotAnImage)?, icc))
}
