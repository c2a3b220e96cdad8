//! WebP: RIFF chunks kept by FourCC, the VP8X flags fixed to match; every frame decoded. A WebP
//! that fits [`MAX_SIDE`] keeps its chunks (animation included); a larger one keeps its first
//! frame only, shrunk, as a JPEG (or a PNG if it has transparency).

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

pub(super) fn sanitize(input: &[u8], cancel: &Cancel) -> Result<CleanImage, ImageError> {
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
            check_source(size.0, size.1)?;
            let mut frames: u64 = 0;
            let mut bitstreams = 0;
            for (chunk_type, data) in &chunks {
                match chunk_type {
                    // x(3) y(3) width-1(3) height-1(3) duration(3) flags(1), then the frame.
                    b"ANMF" => {
                        check_source(u24_le(data, 6)? + 1, u24_le(data, 9)? + 1)?;
                        frames += 1;
                    }
                    b"VP8 " | b"VP8L" => {
                        let (w, h) = bitstream_size(chunk_type, data)?;
                        check_source(w, h)?;
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
            check_source(w, h)?;
            (w, h)
        }
        _ => return Err(ImageError::NotAnImage),
    };
    let oversize = width.max(height) > MAX_SIDE;
    if let Some(first) = guarded(|| decode(input, oversize, cancel))? {
        let lossy = chunks.iter().any(|(t, _)| t == b"VP8 ");
        return first.to_still(lossy);
    }
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

/// Decodes every frame (a whole frame at a time, so one frame must fit half of
/// [`MAX_DECODE_BYTES`], leaving the rest to the decoder's own planes). With `first_only`, stops
/// at the first frame and returns it shrunk to fit. Stops when `cancel` is set, between frames
/// and whenever the decoder reads more input.
fn decode(input: &[u8], first_only: bool, cancel: &Cancel) -> Result<Option<Rgba>, ImageError> {
    let bad = |_| cancel.or(ImageError::NotAnImage);
    let budget = MAX_DECODE_BYTES / 2;
    let mut decoder = image_webp::WebPDecoder::new(Until::new(input, cancel)).map_err(bad)?;
    decoder.set_memory_limit(usize::try_from(budget).unwrap_or(usize::MAX));
    let (width, height) = decoder.dimensions();
    let size = decoder
        .output_buffer_size()
        .filter(|&n| u64::try_from(n).is_ok_and(|n| n <= budget))
        .ok_or_else(|| ImageError::TooLarge(format!("a {width}×{height} WebP frame")))?;
    let mut frame = vec![0u8; size];
    if first_only || !decoder.is_animated() {
        decoder.read_image(&mut frame).map_err(bad)?;
        cancel.check()?;
        if !first_only {
            return Ok(None);
        }
        let channels = if decoder.has_alpha() { 4 } else { 3 };
        let mut shrink = Shrink::new(width, height)?;
        let mut row = Vec::with_capacity(usize_from(width) * 4);
        for line in frame.chunks_exact(usize_from(width) * channels) {
            cancel.check()?;
            row.clear();
            for pixel in line.chunks_exact(channels) {
                row.extend_from_slice(pixel);
                if channels == 3 {
                    row.push(255);
                }
            }
            shrink.push(&row)?;
        }
        return shrink.finish().map(Some);
    }
    for _ in 0..decoder.num_frames() {
        cancel.check()?;
        decoder.read_frame(&mut frame).map_err(bad)?;
    }
    Ok(None)
}
