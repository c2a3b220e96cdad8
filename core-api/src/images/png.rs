//! PNG: chunks kept by type (critical ones and those that affect rendering), CRCs checked.

use super::*;

/// Ancillary chunks that say how the (8-bit) pixels are to be shown, copied into the new file.
/// All others are dropped: text, EXIF, time and private chunks as metadata; transparency,
/// significant bits, background, histogram and palettes as described by the new pixels; the
/// animation (acTL, fcTL, fdAT) as only the still image is kept.
const COLOUR_CHUNKS: [&[u8; 4]; 5] = [b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP"];

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
    check_source(width, height)?;
    Ok((width, height))
}

pub(super) fn sanitize(input: &[u8], cancel: &Cancel) -> Result<CleanImage, ImageError> {
    let mut pos = PNG_SIGNATURE.len();
    let mut size = None;
    let mut colour_chunks: Vec<([u8; 4], &[u8])> = Vec::new();
    let mut has_data = false;
    loop {
        let len = usize_from(u32_be(input, pos)?);
        let chunk_type: [u8; 4] = array(input, pos + 4)?;
        let data = slice(input, pos + 8, len)?;
        let crc = u32_be(input, pos + 8 + len)?;
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
        } else if crc_ok && COLOUR_CHUNKS.contains(&&chunk_type) {
            colour_chunks.push((chunk_type, data));
        }
        has_data |= &chunk_type == b"IDAT";
        if &chunk_type == b"IEND" {
            break;
        }
    }
    let (width, height) = size.ok_or(ImageError::NotAnImage)?;
    if !has_data {
        return Err(ImageError::NotAnImage);
    }
    let pixels = guarded(|| decode(input, width, height, cancel))?;
    let bytes = pixels.to_png(&colour_chunks)?;
    Ok(CleanImage {
        bytes: Bytes::from(bytes),
        kind: ImageKind::Png,
        width: pixels.width,
        height: pixels.height,
    })
}

/// Decodes the image data to 8-bit RGBA, shrunk to fit [`MAX_SIDE`] as the rows come. Rows are
/// decoded one at a time (memory: a row or two, and the output); an interlaced image is decoded
/// whole first, so it must fit [`MAX_DECODE_BYTES`] at full size. Stops when `cancel` is set.
fn decode(input: &[u8], width: u32, height: u32, cancel: &Cancel) -> Result<Rgba, ImageError> {
    use ::png::{ColorType, Transformations};

    let bad = |_| cancel.or(ImageError::NotAnImage);
    let limits = ::png::Limits {
        bytes: usize::try_from(MAX_DECODE_BYTES).unwrap_or(usize::MAX),
    };
    let mut decoder = ::png::Decoder::new_with_limits(Until::new(input, cancel), limits);
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(bad)?;
    let (color, _) = reader.output_color_type();
    let to_rgba = |row: &[u8], out: &mut Vec<u8>| {
        out.clear();
        match color {
            ColorType::Grayscale => row.iter().for_each(|&v| out.extend([v, v, v, 255])),
            ColorType::GrayscaleAlpha => row
                .chunks_exact(2)
                .for_each(|p| out.extend([p[0], p[0], p[0], p[1]])),
            ColorType::Rgb => row
                .chunks_exact(3)
                .for_each(|p| out.extend([p[0], p[1], p[2], 255])),
            _ => out.extend_from_slice(row),
        }
    };
    let mut shrink = Shrink::new(width, height)?;
    let mut scratch = Vec::with_capacity(usize_from(width) * 4);
    if reader.info().interlaced {
        let size = reader
            .output_buffer_size()
            .filter(|&n| u64::try_from(n).is_ok_and(|n| n <= MAX_DECODE_BYTES))
            .ok_or_else(|| ImageError::TooLarge(format!("an interlaced {width}×{height} PNG")))?;
        let mut whole = vec![0; size];
        let frame = reader.next_frame(&mut whole).map_err(bad)?;
        for row in whole.chunks_exact(frame.line_size).take(usize_from(height)) {
            cancel.check()?;
            to_rgba(row, &mut scratch);
            shrink.push(&scratch)?;
        }
    } else {
        while let Some(row) = reader.next_row().map_err(bad)? {
            cancel.check()?;
            to_rgba(row.data(), &mut scratch);
            shrink.push(&scratch)?;
        }
    }
    shrink.finish()
}
