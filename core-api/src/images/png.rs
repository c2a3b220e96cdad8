//! PNG: chunks kept by type (critical ones and those that affect rendering), CRCs checked.

use super::*;

/// Ancillary chunks that change how the pixels look or move; all others (tEXt, zTXt, iTXt,
/// eXIf, tIME and private ones) are dropped.
const KEPT_ANCILLARY: &[&[u8; 4]] = &[
    b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"bKGD", b"pHYs", b"hIST", b"sPLT",
    b"acTL", b"fcTL", b"fdAT", b"cICP", b"mDCv", b"cLLi",
];

/// Bytes of one filtered row of `width` pixels of `bits` bits each, with its filter-type byte.
fn row_bytes(width: u64, bits: u64) -> u64 {
    1 + (width * bits).div_ceil(8)
}

/// The size of the inflated image data the header announces (Adam7 passes when interlaced).
fn expected_data_len(ihdr: &[u8]) -> Result<(u64, Option<u64>), ImageError> {
    let (width, height) = (u64::from(u32_be(ihdr, 0)?), u64::from(u32_be(ihdr, 4)?));
    let channels = match byte(ihdr, 9)? {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        _ => 4,
    };
    let bits = u64::from(byte(ihdr, 8)?) * channels;
    if byte(ihdr, 12)? == 0 {
        let row = row_bytes(width, bits);
        return Ok((height * row, Some(row)));
    }
    const PASSES: [(u64, u64, u64, u64); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut total = 0;
    for (x0, y0, dx, dy) in PASSES {
        let pass_width = width.saturating_sub(x0).div_ceil(dx);
        let pass_height = height.saturating_sub(y0).div_ceil(dy);
        if pass_width > 0 && pass_height > 0 {
            total += pass_height * row_bytes(pass_width, bits);
        }
    }
    Ok((total, None))
}

/// Decodes the image data far enough to know it is an image: the IDAT chunks must hold one
/// complete zlib stream that inflates to exactly the size the header announces, every row
/// starting with a valid filter type. Arbitrary bytes (a `<script>`) behind a valid header are
/// refused. The pixels are not kept: memory stays one scratch buffer whatever the image.
fn check_image_data(ihdr: &[u8], idat: &[&[u8]]) -> Result<(), ImageError> {
    use flate2::{Decompress, FlushDecompress, Status};
    let (expected, row) = expected_data_len(ihdr)?;
    let mut inflater = Decompress::new(true);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut produced: u64 = 0;
    let mut ended = false;
    let last = idat.len();
    for (index, chunk) in idat.iter().enumerate() {
        let mut input: &[u8] = chunk;
        loop {
            let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
            let flush = if index + 1 == last {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let status = inflater
                .decompress(input, &mut scratch, flush)
                .map_err(|_| ImageError::NotAnImage)?;
            let consumed = usize::try_from(inflater.total_in() - in_before).unwrap_or(usize::MAX);
            let out = inflater.total_out() - out_before;
            input = input.get(consumed..).ok_or(ImageError::NotAnImage)?;
            if let Some(row) = row {
                // The filter-type bytes that fell into this piece of output.
                let mut at = produced.div_ceil(row) * row;
                while at < produced + out {
                    let filter = scratch
                        .get(usize::try_from(at - produced).unwrap_or(usize::MAX))
                        .copied()
                        .ok_or(ImageError::NotAnImage)?;
                    if filter > 4 {
                        return Err(ImageError::NotAnImage);
                    }
                    at += row;
                }
            }
            produced += out;
            if produced > expected {
                return Err(ImageError::NotAnImage);
            }
            if status == Status::StreamEnd {
                ended = true;
                break;
            }
            if consumed == 0 && out == 0 {
                break;
            }
        }
        if ended {
            break;
        }
    }
    if !ended || produced != expected {
        return Err(ImageError::NotAnImage);
    }
    Ok(())
}

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
    let mut header: &[u8] = &[];
    let mut idat: Vec<&[u8]> = Vec::new();
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
            header = data;
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
        if &chunk_type == b"IDAT" {
            idat.push(data);
        }
        out.extend_from_slice(whole);
        if &chunk_type == b"IEND" {
            break;
        }
    }
    let (width, height) = size.ok_or(ImageError::NotAnImage)?;
    if idat.is_empty() {
        return Err(ImageError::NotAnImage);
    }
    check_image_data(header, &idat)?;
    Ok(CleanImage {
        bytes: Bytes::from(out),
        kind: ImageKind::Png,
        width,
        height,
    })
}
