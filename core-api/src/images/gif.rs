//! GIF: blocks walked one by one; comments and foreign application extensions dropped; every
//! frame decoded. A GIF that fits [`MAX_SIDE`] keeps its frames (animation included, within
//! [`MAX_ANIMATION_PIXELS`]); a larger one keeps its first frame only, shrunk, as a PNG.

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

pub(super) fn sanitize(input: &[u8], cancel: &Cancel) -> Result<CleanImage, ImageError> {
    // header(6), logical screen descriptor: width, height, packed, background, aspect.
    let width = u32::from(u16_le(input, 6)?);
    let height = u32::from(u16_le(input, 8)?);
    check_source(width, height)?;
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
                check_source(frame_width, frame_height)?;
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
                    APPLICATION => first_block == b"NETSCAPE2.0" || first_block == b"ANIMEXTS1.0",
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
    let oversize = width.max(height) > MAX_SIDE;
    if let Some(first) = guarded(|| decode(input, oversize, cancel))? {
        return first.to_still(false);
    }
    Ok(CleanImage {
        bytes: Bytes::from(out),
        kind: ImageKind::Gif,
        width,
        height,
    })
}

/// Decodes every frame, one at a time in palette indices (memory: one frame, a byte a pixel), so
/// that bytes behind a GIF header are not taken for a GIF. With `first_only`, stops at the first
/// frame and returns it drawn on the canvas, shrunk to fit. Stops when `cancel` is set.
fn decode(input: &[u8], first_only: bool, cancel: &Cancel) -> Result<Option<Rgba>, ImageError> {
    let bad = |_| cancel.or(ImageError::NotAnImage);
    let mut options = ::gif::DecodeOptions::new();
    options.set_color_output(::gif::ColorOutput::Indexed);
    if let Some(limit) = std::num::NonZeroU64::new(MAX_DECODE_BYTES) {
        options.set_memory_limit(::gif::MemoryLimit::Bytes(limit));
    }
    let mut decoder = options.read_info(Until::new(input, cancel)).map_err(bad)?;
    let canvas = (u32::from(decoder.width()), u32::from(decoder.height()));
    let global = decoder
        .global_palette()
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let mut decoded = 0;
    while let Some(frame) = decoder.read_next_frame().map_err(bad)? {
        cancel.check()?;
        decoded += 1;
        if first_only {
            let palette = frame.palette.as_deref().unwrap_or(&global);
            return draw(frame, palette, canvas, cancel).map(Some);
        }
    }
    if decoded == 0 {
        return Err(ImageError::NotAnImage);
    }
    Ok(None)
}

/// `frame` on a transparent canvas, row by row into a [`Shrink`].
fn draw(
    frame: &::gif::Frame<'_>,
    palette: &[u8],
    (width, height): (u32, u32),
    cancel: &Cancel,
) -> Result<Rgba, ImageError> {
    let mut shrink = Shrink::new(width, height)?;
    let (left, top) = (usize::from(frame.left), usize::from(frame.top));
    let frame_width = usize::from(frame.width);
    let mut row = vec![0u8; usize_from(width) * 4];
    for y in 0..usize_from(height) {
        cancel.check()?;
        row.fill(0);
        let indices = y
            .checked_sub(top)
            .filter(|&line| line < usize::from(frame.height))
            .and_then(|line| {
                frame
                    .buffer
                    .get(line * frame_width..(line + 1) * frame_width)
            });
        for (x, &index) in indices.into_iter().flatten().enumerate() {
            if Some(index) == frame.transparent {
                continue;
            }
            let at = (left + x) * 4;
            let colour = slice(palette, usize::from(index) * 3, 3).unwrap_or(&[0, 0, 0]);
            if let Some(pixel) = row.get_mut(at..at + 4) {
                pixel[..3].copy_from_slice(colour);
                pixel[3] = 255;
            }
        }
        shrink.push(&row)?;
    }
    shrink.finish()
}
