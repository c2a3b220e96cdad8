//! GIF: blocks walked one by one; comments and foreign application extensions dropped.

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
    Ok(CleanImage {
        bytes: Bytes::from(out),
        kind: ImageKind::Gif,
        width,
        height,
    })
}
