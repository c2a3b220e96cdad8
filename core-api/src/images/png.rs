//! PNG: chunks kept by type (critical ones and those that affect rendering), CRCs checked, the
//! pixels always written out again. An APNG that fits [`MAX_SIDE`] keeps its animation: every
//! frame decoded and re-encoded with its place, timing, disposal and blending. A larger (or an
//! interlaced) one keeps its still image only, shrunk.

use std::io::Write;

use super::*;

/// Ancillary chunks that say how the pixels are to be shown, copied into the new file. All others
/// are dropped: text, EXIF, time and private chunks as metadata; transparency, significant bits,
/// background, histogram and palettes as described by the new pixels (an animation's palette and
/// transparency are written by the encoder); the animation's own chunks (acTL, fcTL, fdAT) are
/// written anew from the decoded frames.
const COLOUR_CHUNKS: [&[u8; 4]; 5] = [b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP"];

/// A re-encoded animation may be at most this many times its upload (plus
/// [`ANIMATION_SLACK_BYTES`]): pixels that the upload's compression packed far better than ours
/// would otherwise turn a small upload into a huge stored file.
const ANIMATION_GROWTH: usize = 2;
const ANIMATION_SLACK_BYTES: usize = 1 << 20;

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
    let mut interlaced = false;
    // acTL's frame count and the fcTL chunks seen (the APNG spec: they must agree).
    let mut animation: Option<u32> = None;
    let mut frame_controls: u32 = 0;
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
            interlaced = byte(data, 12)? == 1;
        } else if critical {
            match &chunk_type {
                b"IDAT" | b"PLTE" | b"IEND" if crc_ok => {}
                _ => return Err(ImageError::NotAnImage),
            }
        } else if crc_ok && COLOUR_CHUNKS.contains(&&chunk_type) {
            colour_chunks.push((chunk_type, data));
        } else if crc_ok && &chunk_type == b"acTL" && animation.is_none() && !has_data {
            // (After the image data it is no APNG, only a still image with a stray chunk.)
            animation = Some(u32_be(data, 0)?);
        } else if crc_ok && &chunk_type == b"fcTL" {
            frame_controls = frame_controls.saturating_add(1);
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
    if let Some(frames) = animation {
        if frames == 0 || frames != frame_controls {
            return Err(ImageError::NotAnImage);
        }
        if shrink_factor(width, height) == 1 && !interlaced {
            // The frames plus a default image that may stand outside the animation.
            check_animation(u64::from(frames) + 1, width, height)?;
            let cap = input
                .len()
                .saturating_mul(ANIMATION_GROWTH)
                .saturating_add(ANIMATION_SLACK_BYTES);
            let bytes = guarded(|| animated(input, &colour_chunks, cancel, cap))?;
            return Ok(CleanImage {
                bytes: Bytes::from(bytes),
                kind: ImageKind::Png,
                width,
                height,
            });
        }
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

/// A PNG reader of `input` past its header, within [`MAX_DECODE_BYTES`], giving rows as
/// `transformations` say; reads fail once `cancel` is set.
fn read_info<'a>(
    input: &'a [u8],
    cancel: &'a Cancel,
    transformations: ::png::Transformations,
) -> Result<::png::Reader<Until<'a>>, ImageError> {
    let limits = ::png::Limits {
        bytes: usize::try_from(MAX_DECODE_BYTES).unwrap_or(usize::MAX),
    };
    let mut decoder = ::png::Decoder::new_with_limits(Until::new(input, cancel), limits);
    decoder.set_transformations(transformations);
    decoder
        .read_info()
        .map_err(|_| cancel.or(ImageError::NotAnImage))
}

/// Decodes the image data to 8-bit RGBA, shrunk to fit [`MAX_SIDE`] as the rows come. Rows are
/// decoded one at a time (memory: a row or two, and the output); an interlaced image is decoded
/// whole first, so it must fit [`MAX_DECODE_BYTES`] at full size. Stops when `cancel` is set.
fn decode(input: &[u8], width: u32, height: u32, cancel: &Cancel) -> Result<Rgba, ImageError> {
    use ::png::{ColorType, Transformations};

    let bad = |_| cancel.or(ImageError::NotAnImage);
    let mut reader = read_info(
        input,
        cancel,
        Transformations::EXPAND | Transformations::STRIP_16,
    )?;
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

/// A `Vec` that refuses to grow past `cap` bytes (and remembers that it did).
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            self.over = true;
            return Err(std::io::Error::other("over the size limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An APNG written anew: each frame (and a default image outside the animation, if any) decoded
/// in its own colour type and depth and encoded again with the same frame control (size, offset,
/// delay, disposal, blending), palette and transparency, and `colour_chunks`. Memory: one frame at
/// a time and the output, at most `cap` bytes (past it: `TooLarge`). Stops when `cancel` is set,
/// between frames.
fn animated(
    input: &[u8],
    colour_chunks: &[([u8; 4], &[u8])],
    cancel: &Cancel,
    cap: usize,
) -> Result<Vec<u8>, ImageError> {
    use ::png::{Compression, Transformations};

    let bad = |_| cancel.or(ImageError::NotAnImage);
    let mut reader = read_info(input, cancel, Transformations::IDENTITY)?;
    let info = reader.info();
    let (width, height) = (info.width, info.height);
    let control = info.animation_control.ok_or(ImageError::NotAnImage)?;
    // Without an fcTL before the image data, the default image is not a frame of the animation.
    let separate_default = info.frame_control.is_none();
    let images = u64::from(control.num_frames) + u64::from(separate_default);
    let frame_bytes = reader
        .output_buffer_size()
        .filter(|&n| u64::try_from(n).is_ok_and(|n| n <= MAX_DECODE_BYTES / 2))
        .ok_or_else(|| ImageError::TooLarge(format!("a {width}×{height} APNG frame")))?;

    let mut out = Capped {
        bytes: Vec::with_capacity(input.len()),
        cap,
        over: false,
    };
    let written = (|| -> Result<(), ImageError> {
        let fail = |e: ::png::EncodingError| ImageError::Reencode(e.to_string());
        let info = reader.info();
        let mut encoder = ::png::Encoder::new(&mut out, width, height);
        encoder.set_color(info.color_type);
        encoder.set_depth(info.bit_depth);
        if let Some(palette) = &info.palette {
            encoder.set_palette(palette.to_vec());
        }
        if let Some(trns) = &info.trns {
            encoder.set_trns(trns.to_vec());
        }
        encoder.set_compression(Compression::Balanced);
        encoder
            .set_animated(control.num_frames, control.num_plays)
            .map_err(fail)?;
        encoder.set_sep_def_img(separate_default).map_err(fail)?;
        let mut writer = encoder.write_header().map_err(fail)?;
        for (chunk_type, data) in colour_chunks {
            writer
                .write_chunk(::png::chunk::ChunkType(*chunk_type), data)
                .map_err(fail)?;
        }
        let mut frame = vec![0u8; frame_bytes];
        for image in 0..images {
            cancel.check()?;
            let output = reader.next_frame(&mut frame).map_err(bad)?;
            // From the origin, so the next frame's size is checked against the whole image.
            writer.reset_frame_position().map_err(fail)?;
            match reader.info().frame_control {
                Some(fc) if !(image == 0 && separate_default) => {
                    writer
                        .set_frame_dimension(fc.width, fc.height)
                        .map_err(fail)?;
                    writer
                        .set_frame_position(fc.x_offset, fc.y_offset)
                        .map_err(fail)?;
                    writer
                        .set_frame_delay(fc.delay_num, fc.delay_den)
                        .map_err(fail)?;
                    writer.set_dispose_op(fc.dispose_op).map_err(fail)?;
                    writer.set_blend_op(fc.blend_op).map_err(fail)?;
                }
                // The default image outside the animation: the whole image.
                _ => writer.reset_frame_dimension().map_err(fail)?,
            }
            let len = output.line_size * usize_from(output.height);
            let data = frame.get(..len).ok_or(ImageError::NotAnImage)?;
            writer.write_image_data(data).map_err(fail)?;
        }
        writer.finish().map_err(fail)
    })();
    if out.over {
        return Err(ImageError::TooLarge(format!(
            "the animation written anew would be over {cap} bytes"
        )));
    }
    written?;
    Ok(out.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An APNG of two 64×64 frames of noise (which no compression shrinks).
    fn noisy_apng() -> Vec<u8> {
        let mut state: u32 = 0x2545_F491;
        let mut noise = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        };
        let mut out = Vec::new();
        let mut encoder = ::png::Encoder::new(&mut out, 64, 64);
        encoder.set_color(::png::ColorType::Rgba);
        encoder.set_animated(2, 0).expect("animated");
        let mut writer = encoder.write_header().expect("header");
        for _ in 0..2 {
            let frame: Vec<u8> = (0..64 * 64 * 4).map(|_| noise()).collect();
            writer.write_image_data(&frame).expect("frame");
        }
        writer.finish().expect("finish");
        out
    }

    #[test]
    fn an_animation_written_anew_stops_at_its_size_limit() {
        let upload = noisy_apng();
        let cancel = Cancel::new();
        let whole = animated(&upload, &[], &cancel, upload.len() * 2).expect("within the limit");
        assert!(whole.len() > upload.len() / 2, "{} bytes", whole.len());
        match animated(&upload, &[], &cancel, whole.len() - 1) {
            Err(ImageError::TooLarge(why)) => assert!(why.contains("written anew"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_animation_stops_when_cancelled() {
        let cancel = Cancel::new();
        cancel.cancel();
        assert!(matches!(
            animated(&noisy_apng(), &[], &cancel, usize::MAX),
            Err(ImageError::Abandoned)
        ));
    }
}
