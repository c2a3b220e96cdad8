//! PNG: chunks kept by type (critical ones and those that affect rendering), CRCs checked.

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
