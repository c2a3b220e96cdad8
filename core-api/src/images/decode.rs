//! What every format's decoding shares: stopping when told to, shrinking rows as they come, and
//! writing the result out again.

use std::io::{BufRead, Cursor, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::*;

/// Set when the request that wanted an image is gone (its time limit ended, or the client left):
/// the decoding stops at its next check and its turn is given back.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag nobody has set yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Tells the decoding to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the decoding was told to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(super) fn check(&self) -> Result<(), ImageError> {
        if self.is_cancelled() {
            Err(ImageError::Abandoned)
        } else {
            Ok(())
        }
    }

    /// `error` from a decoder, or [`ImageError::Abandoned`] if it failed because we stopped it.
    pub(super) fn or(&self, error: ImageError) -> ImageError {
        if self.is_cancelled() {
            ImageError::Abandoned
        } else {
            error
        }
    }
}

/// The input as decoders read it, failing every read once the decoding is cancelled: decoders
/// pull their input as they decode (JPEG scans byte by byte, PNG and GIF one buffer at a time),
/// so this is how a decode already under way is stopped.
pub(super) struct Until<'a> {
    input: Cursor<&'a [u8]>,
    cancel: &'a Cancel,
}

impl<'a> Until<'a> {
    pub(super) fn new(input: &'a [u8], cancel: &'a Cancel) -> Until<'a> {
        Until {
            input: Cursor::new(input),
            cancel,
        }
    }

    fn check(&self) -> std::io::Result<()> {
        if self.cancel.is_cancelled() {
            Err(std::io::Error::other("image decoding abandoned"))
        } else {
            Ok(())
        }
    }
}

impl Read for Until<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.check()?;
        self.input.read(buf)
    }
}

impl BufRead for Until<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.check()?;
        self.input.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.input.consume(amount);
    }
}

impl Seek for Until<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.input.seek(to)
    }
}

/// By how much a `width`×`height` picture is shrunk so its long side fits [`MAX_SIDE`].
pub(super) fn shrink_factor(width: u32, height: u32) -> u32 {
    width.max(height).div_ceil(MAX_SIDE).max(1)
}

/// Pixels in RGBA, 8 bits a channel.
pub(super) struct Rgba {
    pub(super) pixels: Vec<u8>,
    pub(super) width: u32,
    pub(super) height: u32,
}

/// Shrinks a picture by a whole factor as its rows arrive, each output pixel the mean of a
/// factor × factor box: memory is one row of sums plus the output, whatever the input's size.
pub(super) struct Shrink {
    factor: u32,
    width: u32,
    out_width: u32,
    out_height: u32,
    sums: Vec<u32>,
    rows_in_band: u32,
    out: Vec<u8>,
}

impl Shrink {
    /// For a `width`×`height` picture, shrunk by [`shrink_factor`].
    pub(super) fn new(width: u32, height: u32) -> Result<Shrink, ImageError> {
        let factor = shrink_factor(width, height);
        let (out_width, out_height) = (width.div_ceil(factor), height.div_ceil(factor));
        let out_len = usize_from(out_width) * usize_from(out_height) * 4;
        if u64::try_from(out_len).unwrap_or(u64::MAX) > MAX_DECODE_BYTES {
            return Err(ImageError::TooLarge(format!("{width}×{height} pixels")));
        }
        Ok(Shrink {
            factor,
            width,
            out_width,
            out_height,
            sums: vec![0; usize_from(out_width) * 4],
            rows_in_band: 0,
            out: Vec::with_capacity(out_len),
        })
    }

    /// Adds the next row, `width` RGBA pixels.
    pub(super) fn push(&mut self, row: &[u8]) -> Result<(), ImageError> {
        let row = row
            .get(..usize_from(self.width) * 4)
            .ok_or(ImageError::NotAnImage)?;
        if self.factor == 1 {
            self.out.extend_from_slice(row);
            return Ok(());
        }
        let factor = usize_from(self.factor);
        for (x, pixel) in row.chunks_exact(4).enumerate() {
            let at = (x / factor) * 4;
            if let Some(sum) = self.sums.get_mut(at..at + 4) {
                for (s, &v) in sum.iter_mut().zip(pixel) {
                    *s += u32::from(v);
                }
            }
        }
        self.rows_in_band += 1;
        if self.rows_in_band == self.factor {
            self.flush_band();
        }
        Ok(())
    }

    fn flush_band(&mut self) {
        for (x, sum) in self.sums.chunks_exact_mut(4).enumerate() {
            let x = u32::try_from(x).unwrap_or(u32::MAX);
            let box_width = self.factor.min(self.width - x * self.factor);
            let count = box_width * self.rows_in_band;
            for s in sum.iter_mut() {
                self.out
                    .push(u8::try_from((*s + count / 2) / count).unwrap_or(u8::MAX));
                *s = 0;
            }
        }
        self.rows_in_band = 0;
    }

    /// The shrunk picture; every row of the input must have been pushed.
    pub(super) fn finish(mut self) -> Result<Rgba, ImageError> {
        if self.rows_in_band > 0 {
            self.flush_band();
        }
        if self.out.len() != usize_from(self.out_width) * usize_from(self.out_height) * 4 {
            return Err(ImageError::NotAnImage);
        }
        Ok(Rgba {
            pixels: self.out,
            width: self.out_width,
            height: self.out_height,
        })
    }
}

impl Rgba {
    fn opaque(&self) -> bool {
        self.pixels.chunks_exact(4).all(|p| p.get(3) == Some(&255))
    }

    fn grey(&self) -> bool {
        self.pixels
            .chunks_exact(4)
            .all(|p| p.first() == p.get(1) && p.get(1) == p.get(2))
    }

    /// The pixels without the channels nobody needs: grey or colour, with alpha only if any
    /// pixel is not opaque.
    fn packed(&self) -> (Vec<u8>, ::png::ColorType) {
        let (grey, opaque) = (self.grey(), self.opaque());
        let (color, keep): (::png::ColorType, &[usize]) = match (grey, opaque) {
            (true, true) => (::png::ColorType::Grayscale, &[0]),
            (true, false) => (::png::ColorType::GrayscaleAlpha, &[0, 3]),
            (false, true) => (::png::ColorType::Rgb, &[0, 1, 2]),
            (false, false) => (::png::ColorType::Rgba, &[0, 1, 2, 3]),
        };
        let pixels = self
            .pixels
            .chunks_exact(4)
            .flat_map(|p| keep.iter().map(move |&i| p.get(i).copied().unwrap_or(0)))
            .collect();
        (pixels, color)
    }

    /// A new PNG of these pixels, with `colour_chunks` (gAMA, cHRM, sRGB, iCCP, cICP, as found
    /// in the source) written before the image data.
    pub(super) fn to_png(&self, colour_chunks: &[([u8; 4], &[u8])]) -> Result<Vec<u8>, ImageError> {
        let fail = |e: ::png::EncodingError| ImageError::Reencode(e.to_string());
        let (pixels, color) = self.packed();
        let mut out = Vec::new();
        let mut encoder = ::png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(color);
        encoder.set_depth(::png::BitDepth::Eight);
        encoder.set_compression(::png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(fail)?;
        for (chunk_type, data) in colour_chunks {
            writer
                .write_chunk(::png::chunk::ChunkType(*chunk_type), data)
                .map_err(fail)?;
        }
        writer.write_image_data(&pixels).map_err(fail)?;
        writer.finish().map_err(fail)?;
        Ok(out)
    }

    /// A new JPEG of these pixels (alpha dropped), with `icc` if it describes them.
    pub(super) fn to_jpeg(&self, icc: Option<Vec<u8>>) -> Result<Vec<u8>, ImageError> {
        use image::codecs::jpeg::JpegEncoder;
        use image::ImageEncoder;

        let grey = self.grey();
        let keep: &[usize] = if grey { &[0] } else { &[0, 1, 2] };
        let pixels: Vec<u8> = self
            .pixels
            .chunks_exact(4)
            .flat_map(|p| keep.iter().map(move |&i| p.get(i).copied().unwrap_or(0)))
            .collect();
        let mut out = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut out, REENCODE_QUALITY);
        // A CMYK profile would be wrong for the pixels decoded to RGB: keep matching ones only.
        let wanted_space: &[u8] = if grey { b"GRAY" } else { b"RGB " };
        if let Some(icc) = icc.filter(|p| p.get(16..20) == Some(wanted_space)) {
            let _ = encoder.set_icc_profile(icc);
        }
        let color = if grey {
            image::ExtendedColorType::L8
        } else {
            image::ExtendedColorType::Rgb8
        };
        encoder
            .write_image(&pixels, self.width, self.height, color)
            .map_err(|e| ImageError::Reencode(e.to_string()))?;
        Ok(out)
    }

    /// A still picture of an upload too large to keep as it is: a JPEG when it is opaque and
    /// came from a lossy format, else a PNG.
    pub(super) fn to_still(&self, lossy: bool) -> Result<CleanImage, ImageError> {
        let (bytes, kind) = if lossy && self.opaque() {
            (self.to_jpeg(None)?, ImageKind::Jpeg)
        } else {
            (self.to_png(&[])?, ImageKind::Png)
        };
        Ok(CleanImage {
            bytes: Bytes::from(bytes),
            kind,
            width: self.width,
            height: self.height,
        })
    }
}

/// Runs a third-party decoder on hostile input: a panic in it is a bad image, not a crash.
pub(super) fn guarded<T>(decode: impl FnOnce() -> Result<T, ImageError>) -> Result<T, ImageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or(Err(ImageError::NotAnImage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_fits_the_long_side_and_averages_boxes() {
        assert_eq!(shrink_factor(4096, 10), 1);
        assert_eq!(shrink_factor(4097, 10), 2);
        assert_eq!(shrink_factor(7000, 7000), 2);
        assert_eq!(shrink_factor(100, 16_384), 4);
        // 5×3 by 2: boxes of 2×2, 1×2 at the right edge, 2×1 and 1×1 on the last row.
        let shrink = Shrink::new(5, 3).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shrink.factor, 1, "small pictures are not shrunk");
        let mut shrink = Shrink {
            factor: 2,
            width: 5,
            out_width: 3,
            out_height: 2,
            sums: vec![0; 12],
            rows_in_band: 0,
            out: Vec::new(),
        };
        for y in 0..3u8 {
            let row: Vec<u8> = (0..5u8).flat_map(|x| [x * 10 + y, 0, 0, 255]).collect();
            assert!(shrink.push(&row).is_ok());
        }
        let small = shrink.finish().unwrap_or_else(|e| panic!("{e}"));
        let reds: Vec<u8> = small.pixels.chunks(4).map(|p| p[0]).collect();
        // (0+10+1+11)/4, (20+30+21+31)/4, (40+41)/2; (2+12)/2, (22+32)/2, 42.
        assert_eq!(reds, [6, 26, 41, 7, 27, 42]);
        assert!(small.pixels.chunks(4).all(|p| p[3] == 255));
    }
}
