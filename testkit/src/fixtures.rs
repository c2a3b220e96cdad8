//! Images made in the tests (real encodings from the `image` crate, plus EXIF written by hand) and
//! multipart bodies as the app sends them.

use std::io::Cursor;

/// A PNG of `width`×`height` (RGB, stored deflate blocks), written by hand: the server only
/// builds the `image` crate with JPEG support.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            raw.extend_from_slice(&[(x * 7) as u8, (y * 13) as u8, 128]);
        }
    }
    // zlib stream of stored blocks.
    let mut zlib = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(&data);
        out.extend_from_slice(&crc_input);
        out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    }
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A JPEG of `width`×`height`.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 5) as u8, 200])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

/// The GPS latitude 37°33'59" as EXIF rationals, to look for in stored bytes.
pub const GPS_LATITUDE: [u32; 6] = [37, 1, 33, 1, 59, 1];

fn rationals(values: &[u32; 6]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// An EXIF APP1 segment with an Orientation and a GPS position (37°33'59"N 126°58'41"E).
pub fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0");
    tiff.extend_from_slice(&8u32.to_le_bytes());
    // IFD0: Orientation, GPS IFD pointer.
    let entry = |tag: u16, kind: u16, count: u32, value: u32| -> Vec<u8> {
        [
            tag.to_le_bytes().to_vec(),
            kind.to_le_bytes().to_vec(),
            count.to_le_bytes().to_vec(),
            value.to_le_bytes().to_vec(),
        ]
        .concat()
    };
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend(entry(0x0112, 3, 1, u32::from(orientation)));
    tiff.extend(entry(0x8825, 4, 1, 38));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD at 38: LatitudeRef, Latitude, LongitudeRef, Longitude.
    tiff.extend_from_slice(&4u16.to_le_bytes());
    tiff.extend(entry(0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0")));
    tiff.extend(entry(0x0002, 5, 3, 92));
    tiff.extend(entry(0x0003, 2, 2, u32::from_le_bytes(*b"E\0\0\0")));
    tiff.extend(entry(0x0004, 5, 3, 116));
    tiff.extend_from_slice(&0u32.to_le_bytes());
    assert_eq!(tiff.len(), 92);
    tiff.extend(rationals(&GPS_LATITUDE));
    tiff.extend(rationals(&[126, 1, 58, 1, 41, 1]));
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(
        &u16::try_from(2 + 6 + tiff.len())
            .expect("small")
            .to_be_bytes(),
    );
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend(tiff);
    segment
}

/// A real JPEG with GPS EXIF, as a phone camera writes it (APP1 right after SOI).
pub fn jpeg_with_gps(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let plain = jpeg(width, height);
    let mut out = plain[..2].to_vec();
    out.extend(exif_app1(orientation));
    out.extend_from_slice(&plain[2..]);
    out
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The dimensions of an encoded image.
pub fn dimensions(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("decodes");
    (img.width(), img.height())
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub enum Part {
    /// A text part.
    Text {
        /// Part name.
        name: String,
        /// Its text.
        value: String,
    },
    /// A file part.
    File {
        /// Part name.
        name: String,
        /// The file name the client sends.
        filename: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
}

impl Part {
    /// A text part `name` = `value`.
    pub fn text(name: &str, value: &str) -> Part {
        Part::Text {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    /// A file part `name` with the file name `filename`.
    pub fn file(name: &str, filename: &str, bytes: Vec<u8>) -> Part {
        Part::File {
            name: name.to_owned(),
            filename: filename.to_owned(),
            bytes,
        }
    }
}

/// A `multipart/form-data` body as the Android app (OkHttp) sends it: text parts carry
/// `Content-Type: multipart/form-data`, files `image/*`.
pub fn multipart_body(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = format!("heart-{:012x}", rand::random::<u64>() & 0xFFFF_FFFF_FFFF);
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text { name, value } => {
                body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\nContent-Type: multipart/form-data; charset=utf-8\r\n\r\n").as_bytes());
                body.extend_from_slice(value.as_bytes());
            }
            Part::File {
                name,
                filename,
                bytes,
            } => {
                body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: image/*\r\n\r\n").as_bytes());
                body.extend_from_slice(bytes);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
