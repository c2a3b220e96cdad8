//! Uploaded images lose every piece of metadata, keep their pixels, turn upright, and nothing
//! (truncated files, bombs, random bytes) gets past the checks or makes them panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use heart_core::images::{sanitize, sniff, CleanImage, ImageError, ImageKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------------
// Building real images with metadata.

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// A 32×16 baseline JPEG, left half red, right half blue, straight from an encoder.
fn red_blue_jpeg() -> Vec<u8> {
    let (width, height) = (32u32, 16u32);
    let mut pixels = Vec::new();
    for _y in 0..height {
        for x in 0..width {
            pixels.extend_from_slice(if x < width / 2 { &RED } else { &BLUE });
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// `jpeg` with `segments` inserted right after SOI, where cameras put them.
fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for s in segments {
        out.extend_from_slice(s);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

const LATITUDE: [(u32, u32); 3] = [(37, 1), (33, 1), (1234, 100)];
const LONGITUDE: [(u32, u32); 3] = [(126, 1), (58, 1), (5678, 100)];

fn rationals_be(values: &[(u32, u32)]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|(n, d)| [n.to_be_bytes(), d.to_be_bytes()].concat())
        .collect()
}

/// A big-endian TIFF as cameras write into Exif: IFD0 with Make, Orientation and a GPS IFD
/// holding a latitude and longitude.
fn exif_tiff(orientation: Option<u16>) -> Vec<u8> {
    fn entry(t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value);
    }
    const ASCII: u16 = 2;
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const RATIONAL: u16 = 5;
    let make = b"SecretCam\0";
    let ifd0_entries: u16 = if orientation.is_some() { 3 } else { 2 };
    let ifd0_len = 2 + 12 * u32::from(ifd0_entries) + 4;
    let make_at = 8 + ifd0_len;
    let gps_at = make_at + make.len() as u32;
    let gps_len = 2 + 12 * 4 + 4;
    let latitude_at = gps_at + gps_len;
    let longitude_at = latitude_at + 24;

    let mut t = b"MM\0\x2a".to_vec();
    t.extend_from_slice(&8u32.to_be_bytes());
    t.extend_from_slice(&ifd0_entries.to_be_bytes());
    entry(&mut t, 0x010F, ASCII, 10, make_at.to_be_bytes());
    if let Some(o) = orientation {
        let [a, b] = o.to_be_bytes();
        entry(&mut t, 0x0112, SHORT, 1, [a, b, 0, 0]);
    }
    entry(&mut t, 0x8825, LONG, 1, gps_at.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(make);
    t.extend_from_slice(&4u16.to_be_bytes());
    entry(&mut t, 0x0001, ASCII, 2, *b"N\0\0\0");
    entry(&mut t, 0x0002, RATIONAL, 3, latitude_at.to_be_bytes());
    entry(&mut t, 0x0003, ASCII, 2, *b"E\0\0\0");
    entry(&mut t, 0x0004, RATIONAL, 3, longitude_at.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&rationals_be(&LATITUDE));
    t.extend_from_slice(&rationals_be(&LONGITUDE));
    t
}

fn exif_segment(orientation: Option<u16>) -> Vec<u8> {
    segment(
        0xE1,
        &[b"Exif\0\0".as_slice(), &exif_tiff(orientation)].concat(),
    )
}

fn xmp_segment() -> Vec<u8> {
    segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description exif:GPSLatitude=\"37,33.2N\" \
          secret-xmp=\"1\"/></x:xmpmeta>",
    )
}

fn iptc_segment() -> Vec<u8> {
    segment(
        0xED,
        b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x10secret-iptc-city",
    )
}

fn comment_segment() -> Vec<u8> {
    segment(0xFE, b"secret comment")
}

fn mpf_segment() -> Vec<u8> {
    segment(0xE2, b"MPF\0MM\0\x2a\0\0\0\x08secret-mpf")
}

/// An ICC profile header claiming an RGB colour space (enough for the code; not a real profile).
fn icc_segment() -> Vec<u8> {
    let mut profile = vec![0u8; 132];
    profile[..4].copy_from_slice(&132u32.to_be_bytes());
    profile[12..16].copy_from_slice(b"mntr");
    profile[16..20].copy_from_slice(b"RGB ");
    profile[20..24].copy_from_slice(b"XYZ ");
    profile[36..40].copy_from_slice(b"acsp");
    segment(
        0xE2,
        &[b"ICC_PROFILE\0\x01\x01".as_slice(), &profile].concat(),
    )
}

fn adobe_segment() -> Vec<u8> {
    segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01")
}

/// A photo as a phone would upload it: Exif with GPS, XMP, IPTC, a comment, MPF.
fn photo_with_metadata(orientation: Option<u16>) -> Vec<u8> {
    with_segments(
        &red_blue_jpeg(),
        &[
            exif_segment(orientation),
            xmp_segment(),
            iptc_segment(),
            comment_segment(),
            mpf_segment(),
        ],
    )
}

fn png_chunk(chunk_type: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    c.extend_from_slice(chunk_type);
    c.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(chunk_type);
    crc.update(data);
    c.extend_from_slice(&crc.finalize().to_be_bytes());
    c
}

/// zlib around one stored (uncompressed) deflate block.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).unwrap();
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(!len).to_le_bytes());
    z.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    z
}

fn ihdr(width: u32, height: u32, depth: u8, color: u8) -> Vec<u8> {
    let mut d = width.to_be_bytes().to_vec();
    d.extend_from_slice(&height.to_be_bytes());
    d.extend_from_slice(&[depth, color, 0, 0, 0]);
    png_chunk(b"IHDR", &d)
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A 4×3 RGB PNG carrying every kind of textual and EXIF metadata PNG has.
fn png_with_metadata() -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..3u8 {
        raw.push(0); // filter: none
        for x in 0..4u8 {
            raw.extend_from_slice(&[x * 60, y * 80, 200]);
        }
    }
    [
        PNG_SIGNATURE.to_vec(),
        ihdr(4, 3, 8, 2),
        png_chunk(b"gAMA", &45_455u32.to_be_bytes()),
        png_chunk(b"tEXt", b"Comment\0secret-text"),
        png_chunk(b"zTXt", b"Author\0\0x\x9c secret-ztxt"),
        png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0secret-itxt"),
        png_chunk(b"eXIf", &exif_tiff(Some(1))),
        png_chunk(b"tIME", &[0x07, 0xEA, 11, 25, 12, 0, 0]),
        png_chunk(b"IDAT", &zlib_stored(&raw)),
        png_chunk(b"prVt", b"secret-private"),
        png_chunk(b"IEND", b""),
    ]
    .concat()
}

fn png_chunk_types(png: &[u8]) -> Vec<String> {
    let mut types = Vec::new();
    let mut pos = 8;
    while pos + 8 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        types.push(String::from_utf8_lossy(&png[pos + 4..pos + 8]).into_owned());
        pos += 12 + len;
    }
    assert_eq!(pos, png.len(), "chunks do not tile the file");
    types
}

/// LZW data for 2-bit indices, with a clear code before each one so the code size stays 3 bits.
fn gif_lzw(indices: &[u8]) -> Vec<u8> {
    let (clear, end) = (4u32, 5u32);
    let mut codes = Vec::new();
    for &i in indices {
        codes.push(clear);
        codes.push(u32::from(i));
    }
    codes.push(end);
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for code in codes {
        acc |= code << bits;
        bits += 3;
        while bits >= 8 {
            out.push((acc & 0xFF) as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
    out
}

fn gif_sub_blocks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(255) {
        out.push(chunk.len() as u8);
        out.extend_from_slice(chunk);
    }
    out.push(0);
    out
}

const GIF_HEAD: &[u8] = b"GIF89a\x02\0\x02\0\x80\0\0\xff\0\0\0\0\xff";
const GIF_LOOP: &[u8] = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\0\0\0";
const GIF_CONTROL: &[u8] = b"\x21\xf9\x04\0\x0a\0\0\0";

fn gif_frame() -> Vec<u8> {
    [
        b"\x2c\0\0\0\0\x02\0\x02\0\0\x02".to_vec(),
        gif_sub_blocks(&gif_lzw(&[0, 1, 1, 0])),
    ]
    .concat()
}

/// A 2×2 animated GIF with a comment, XMP and plain text besides its looping and timing.
fn gif_with_metadata() -> Vec<u8> {
    [
        GIF_HEAD.to_vec(),
        [b"\x21\xfe".to_vec(), gif_sub_blocks(b"secret-gif-comment")].concat(),
        GIF_LOOP.to_vec(),
        [
            b"\x21\xff\x0bXMP DataXMP".to_vec(),
            gif_sub_blocks(b"<x:xmpmeta secret-gif-xmp/>"),
        ]
        .concat(),
        GIF_CONTROL.to_vec(),
        gif_frame(),
        [
            b"\x21\x01\x0c\0\0\0\0\x02\0\x02\0\x01\x01\0\x01".to_vec(),
            gif_sub_blocks(b"secret-plain-text"),
        ]
        .concat(),
        GIF_CONTROL.to_vec(),
        gif_frame(),
        b"\x3b".to_vec(),
    ]
    .concat()
}

/// An 8×6 lossless WebP made by libwebp (Pillow) with EXIF (camera make, GPS) and XMP chunks.
const WEBP_WITH_METADATA: &[u8] = include_bytes!("fixtures/exif-xmp.webp");
/// An 8×6 lossy WebP in the simple format (no VP8X), made by libwebp.
const WEBP_LOSSY: &[u8] = include_bytes!("fixtures/lossy.webp");

fn webp_chunks(webp: &[u8]) -> Vec<(String, Vec<u8>)> {
    assert_eq!(&webp[..4], b"RIFF");
    let riff_size = u32::from_le_bytes(webp[4..8].try_into().unwrap()) as usize;
    assert_eq!(riff_size + 8, webp.len(), "RIFF size");
    let mut chunks = Vec::new();
    let mut pos = 12;
    while pos < webp.len() {
        let len = u32::from_le_bytes(webp[pos + 4..pos + 8].try_into().unwrap()) as usize;
        chunks.push((
            String::from_utf8_lossy(&webp[pos..pos + 4]).into_owned(),
            webp[pos + 8..pos + 8 + len].to_vec(),
        ));
        pos += 8 + len + (len & 1);
    }
    assert_eq!(pos, webp.len(), "chunks do not tile the file");
    chunks
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[track_caller]
fn assert_absent(clean: &[u8], needles: &[&[u8]]) {
    for needle in needles {
        assert!(
            !contains(clean, needle),
            "{:?} is still in the image",
            String::from_utf8_lossy(needle)
        );
    }
}

fn decode_jpeg(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .unwrap()
        .to_rgb8()
}

#[track_caller]
fn assert_close(pixel: &image::Rgb<u8>, expected: [u8; 3], at: &str) {
    let distance: i32 = pixel
        .0
        .iter()
        .zip(expected)
        .map(|(a, b)| (i32::from(*a) - i32::from(b)).abs())
        .sum();
    assert!(distance < 90, "{at}: {:?} is not {expected:?}", pixel.0);
}

fn clean(bytes: &[u8]) -> CleanImage {
    sanitize(bytes).unwrap_or_else(|e| panic!("refused: {e}"))
}

// ---------------------------------------------------------------------------------------------
// JPEG

#[test]
fn gps_exif_is_removed_from_a_jpeg_without_reencoding_it() {
    let original = red_blue_jpeg();
    let upload = with_segments(
        &original,
        &[
            exif_segment(Some(1)),
            xmp_segment(),
            iptc_segment(),
            comment_segment(),
            mpf_segment(),
        ],
    );
    assert!(contains(&upload, &rationals_be(&LATITUDE)));
    let clean = clean(&upload);
    assert_eq!(clean.kind, ImageKind::Jpeg);
    assert_eq!((clean.width, clean.height), (32, 16));
    assert_absent(
        &clean.bytes,
        &[
            b"Exif",
            b"SecretCam",
            &rationals_be(&LATITUDE),
            &rationals_be(&LONGITUDE),
            b"MM\0\x2a",
            b"xmpmeta",
            b"secret",
            b"Photoshop",
            b"MPF",
        ],
    );
    // Only the inserted segments went: the encoder's file comes back byte for byte.
    assert_eq!(clean.bytes.as_ref(), original.as_slice());
}

#[test]
fn a_jpeg_without_metadata_comes_back_unchanged() {
    let original = red_blue_jpeg();
    assert_eq!(clean(&original).bytes.as_ref(), original.as_slice());
}

#[test]
fn colour_segments_are_kept() {
    let original = red_blue_jpeg();
    let upload = with_segments(
        &original,
        &[icc_segment(), adobe_segment(), exif_segment(None)],
    );
    let clean = clean(&upload);
    assert!(contains(&clean.bytes, b"JFIF\0"));
    assert!(contains(&clean.bytes, b"ICC_PROFILE\0"));
    assert!(contains(&clean.bytes, b"Adobe"));
    assert_absent(&clean.bytes, &[b"Exif", b"SecretCam"]);
}

#[test]
fn data_after_the_end_of_a_jpeg_is_dropped() {
    let original = red_blue_jpeg();
    let upload = [original.clone(), b"secret-trailer PK\x03\x04".to_vec()].concat();
    assert_eq!(clean(&upload).bytes.as_ref(), original.as_slice());
}

/// The colour at the centre of the top, bottom, left and right quarter of a picture.
fn sides(image: &image::RgbImage) -> [image::Rgb<u8>; 4] {
    let (w, h) = image.dimensions();
    [
        *image.get_pixel(w / 2, h / 8),
        *image.get_pixel(w / 2, h - 1 - h / 8),
        *image.get_pixel(w / 8, h / 2),
        *image.get_pixel(w - 1 - w / 8, h / 2),
    ]
}

#[test]
fn orientation_6_is_applied_to_the_pixels() {
    let clean = clean(&photo_with_metadata(Some(6)));
    // 90° clockwise: the 32×16 picture stands up; its left (red) half is now on top.
    assert_eq!((clean.width, clean.height), (16, 32));
    assert_absent(
        &clean.bytes,
        &[b"Exif", b"SecretCam", &rationals_be(&LATITUDE), b"secret"],
    );
    let decoded = decode_jpeg(&clean.bytes);
    assert_eq!(decoded.dimensions(), (16, 32));
    let [top, bottom, ..] = sides(&decoded);
    assert_close(&top, RED, "top");
    assert_close(&bottom, BLUE, "bottom");
    // Re-encoded, it is clean too: nothing left to strip, nothing left to turn.
    assert_eq!(clean.bytes, sanitize(&clean.bytes).unwrap().bytes);
}

#[test]
fn every_orientation_turns_the_picture_upright() {
    // (orientation, size, colours expected at top, bottom, left, right; None = a mix)
    type Expect = Option<[u8; 3]>;
    let cases: [(u16, (u32, u32), [Expect; 4]); 7] = [
        (2, (32, 16), [None, None, Some(BLUE), Some(RED)]),
        (3, (32, 16), [None, None, Some(BLUE), Some(RED)]),
        (4, (32, 16), [None, None, Some(RED), Some(BLUE)]),
        (5, (16, 32), [Some(RED), Some(BLUE), None, None]),
        (6, (16, 32), [Some(RED), Some(BLUE), None, None]),
        (7, (16, 32), [Some(BLUE), Some(RED), None, None]),
        (8, (16, 32), [Some(BLUE), Some(RED), None, None]),
    ];
    for (orientation, size, expected) in cases {
        let clean = clean(&photo_with_metadata(Some(orientation)));
        assert_eq!(
            (clean.width, clean.height),
            size,
            "orientation {orientation}"
        );
        let decoded = decode_jpeg(&clean.bytes);
        for (side, (pixel, expected)) in ["top", "bottom", "left", "right"]
            .iter()
            .zip(sides(&decoded).iter().zip(expected))
        {
            if let Some(colour) = expected {
                assert_close(pixel, colour, &format!("orientation {orientation}, {side}"));
            }
        }
        assert!(!contains(&clean.bytes, b"Exif"));
    }
}

#[test]
fn a_reencoded_photo_keeps_its_rgb_colour_profile() {
    let upload = with_segments(&red_blue_jpeg(), &[icc_segment(), exif_segment(Some(6))]);
    let clean = clean(&upload);
    assert_eq!((clean.width, clean.height), (16, 32));
    assert!(contains(&clean.bytes, b"ICC_PROFILE\0"));
    assert!(contains(&clean.bytes, b"mntrRGB XYZ "));
}

#[test]
fn orientation_1_and_unknown_values_do_not_reencode() {
    let original = red_blue_jpeg();
    for orientation in [1, 0, 9, 0xFFFF] {
        let clean = clean(&with_segments(
            &original,
            &[exif_segment(Some(orientation))],
        ));
        assert_eq!(
            clean.bytes.as_ref(),
            original.as_slice(),
            "orientation {orientation}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PNG, WebP, GIF

#[test]
fn png_text_exif_and_time_chunks_are_removed() {
    let upload = png_with_metadata();
    let clean = clean(&upload);
    assert_eq!(clean.kind, ImageKind::Png);
    assert_eq!((clean.width, clean.height), (4, 3));
    assert_eq!(
        png_chunk_types(&clean.bytes),
        ["IHDR", "gAMA", "IDAT", "IEND"]
    );
    assert_absent(
        &clean.bytes,
        &[
            b"secret",
            b"SecretCam",
            b"eXIf",
            b"tIME",
            &rationals_be(&LATITUDE),
        ],
    );
    // Re-encoded with the same pixels (for 12 pixels the encoder's stored block may well be the
    // upload's, byte for byte: a script in the pixels is `a_png_holding_a_script_in_its_pixels_is_rewritten`).
    assert_eq!(decode_png(&clean.bytes), decode_png(&upload));
}

/// Width, height and 8-bit RGBA pixels of a PNG, decoded by the `png` crate.
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    pixels.truncate(info.buffer_size());
    let rgba = match info.color_type {
        png::ColorType::GrayscaleAlpha => pixels
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Rgba => pixels,
        other => panic!("{other:?}"),
    };
    (info.width, info.height, rgba)
}

#[test]
fn a_png_holding_a_script_in_its_pixels_is_rewritten() {
    // Valid rows whose bytes spell a script, stored uncompressed: decoding alone cannot tell.
    let script = b"<script>alert(document.cookie)</script>";
    let width = script.len() / 3;
    let mut raw = Vec::new();
    for _ in 0..16 {
        raw.push(0);
        raw.extend_from_slice(&script[..width * 3]);
    }
    let upload = [
        PNG_SIGNATURE.to_vec(),
        ihdr(width as u32, 16, 8, 2),
        png_chunk(b"IDAT", &zlib_stored(&raw)),
        png_chunk(b"IEND", b""),
    ]
    .concat();
    assert!(contains(&upload, b"<script>"));
    let clean = clean(&upload);
    assert_absent(&clean.bytes, &[b"<script>", b"alert"]);
    assert_eq!(decode_png(&clean.bytes), decode_png(&upload));
}

#[test]
fn png_chunks_with_a_bad_checksum_are_refused_or_dropped() {
    let mut upload = png_with_metadata();
    let gama = upload.windows(4).position(|w| w == b"gAMA").unwrap();
    upload[gama + 5] ^= 0x55; // ancillary: dropped
    assert_eq!(
        png_chunk_types(&clean(&upload).bytes),
        ["IHDR", "IDAT", "IEND"]
    );
    let idat = upload.windows(4).position(|w| w == b"IDAT").unwrap();
    upload[idat + 6] ^= 0x55; // critical: the file is corrupt
    assert!(matches!(sanitize(&upload), Err(ImageError::NotAnImage)));
}

#[test]
fn webp_exif_and_xmp_are_removed_and_the_flags_fixed() {
    let before = webp_chunks(WEBP_WITH_METADATA);
    assert!(before.iter().any(|(t, _)| t == "EXIF"));
    assert!(before.iter().any(|(t, _)| t == "XMP "));
    assert_eq!(
        before[0].1[0] & 0x0C,
        0x0C,
        "the fixture declares EXIF and XMP"
    );

    let clean = clean(WEBP_WITH_METADATA);
    assert_eq!(clean.kind, ImageKind::Webp);
    assert_eq!((clean.width, clean.height), (8, 6));
    let after = webp_chunks(&clean.bytes);
    let types: Vec<&str> = after.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["VP8X", "VP8L"]);
    assert_eq!(after[0].1[0] & 0x0C, 0, "VP8X still declares EXIF or XMP");
    assert_eq!(after[1], before[1], "the bitstream changed");
    assert_absent(
        &clean.bytes,
        &[b"SecretCam", b"secretxmp", b"Exif", b"EXIF"],
    );
}

#[test]
fn a_simple_lossy_webp_comes_back_unchanged() {
    let clean = clean(WEBP_LOSSY);
    assert_eq!((clean.width, clean.height), (8, 6));
    assert_eq!(clean.bytes.as_ref(), WEBP_LOSSY);
}

#[test]
fn gif_comments_and_foreign_extensions_are_removed() {
    let clean = clean(&gif_with_metadata());
    assert_eq!(clean.kind, ImageKind::Gif);
    assert_eq!((clean.width, clean.height), (2, 2));
    assert_absent(&clean.bytes, &[b"secret", b"XMP DataXMP"]);
    let expected = [
        GIF_HEAD.to_vec(),
        GIF_LOOP.to_vec(),
        GIF_CONTROL.to_vec(),
        gif_frame(),
        GIF_CONTROL.to_vec(),
        gif_frame(),
        b"\x3b".to_vec(),
    ]
    .concat();
    assert_eq!(clean.bytes.as_ref(), expected.as_slice());
}

// ---------------------------------------------------------------------------------------------
// Refusals

fn valid_samples() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("jpeg", photo_with_metadata(Some(1))),
        ("jpeg turned", photo_with_metadata(Some(6))),
        ("png", png_with_metadata()),
        ("webp", WEBP_WITH_METADATA.to_vec()),
        ("webp lossy", WEBP_LOSSY.to_vec()),
        ("gif", gif_with_metadata()),
        ("apng", small_apng()),
    ]
}

#[test]
fn the_samples_are_valid() {
    for (name, bytes) in valid_samples() {
        assert!(sanitize(&bytes).is_ok(), "{name}");
    }
}

#[test]
fn non_images_are_refused() {
    let not_images: [&[u8]; 12] = [
        b"",
        b"hello",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
        b"%PDF-1.7\n",
        b"<html><body>",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xd9",
        b"RIFF\x04\0\0\0WEBP",
        b"RIFF\x0c\0\0\0WAVEfmt \0\0\0\0",
        b"GIF89a\x01\0\x01\0\0\0\0\x3b",
        b"\0\0\0\x18ftypheic\0\0\0\0",
    ];
    for bytes in not_images {
        assert!(
            matches!(sanitize(bytes), Err(ImageError::NotAnImage)),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn truncated_images_are_refused() {
    for (name, bytes) in valid_samples() {
        for cut in [
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 2,
            bytes.len() - 1,
        ] {
            assert!(
                matches!(sanitize(&bytes[..cut]), Err(ImageError::NotAnImage)),
                "{name} cut at {cut} of {}",
                bytes.len()
            );
        }
    }
}

fn assert_too_large(bytes: &[u8], what: &str) {
    let started = std::time::Instant::now();
    match sanitize(bytes) {
        Err(ImageError::TooLarge(_)) => {}
        other => panic!("{what}: {other:?}"),
    }
    // Refused from the header: a decode of 3.6 gigapixels would take far longer (or abort).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{what}"
    );
}

#[test]
fn decompression_bombs_are_refused_from_their_headers() {
    // A 1-bit 60000×60000 PNG: 450 MB of pixels that deflate would squeeze into a few hundred KB.
    let png_bomb = [
        PNG_SIGNATURE.to_vec(),
        ihdr(60_000, 60_000, 1, 0),
        png_chunk(b"IDAT", &zlib_stored(&[0; 64])),
        png_chunk(b"IEND", b""),
    ]
    .concat();
    assert_too_large(&png_bomb, "PNG");

    let mut jpeg_bomb = red_blue_jpeg();
    let sof = jpeg_bomb
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .unwrap();
    jpeg_bomb[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    assert_too_large(&jpeg_bomb, "JPEG");
    // With an orientation to apply, it must still be refused before any decoding.
    assert_too_large(
        &with_segments(&jpeg_bomb, &[exif_segment(Some(6))]),
        "turned JPEG",
    );

    let mut gif_bomb = gif_with_metadata();
    gif_bomb[6..10].copy_from_slice(&[0x60, 0xEA, 0x60, 0xEA]);
    assert_too_large(&gif_bomb, "GIF canvas");
    let mut gif_frame_bomb = [GIF_HEAD.to_vec(), gif_frame(), b"\x3b".to_vec()].concat();
    gif_frame_bomb[GIF_HEAD.len() + 5..GIF_HEAD.len() + 9]
        .copy_from_slice(&[0x60, 0xEA, 0x60, 0xEA]);
    assert_too_large(&gif_frame_bomb, "GIF frame");

    let mut webp_bomb = WEBP_WITH_METADATA.to_vec();
    let canvas = 60_000u32 - 1;
    webp_bomb[24..27].copy_from_slice(&canvas.to_le_bytes()[..3]);
    webp_bomb[27..30].copy_from_slice(&canvas.to_le_bytes()[..3]);
    assert_too_large(&webp_bomb, "WebP");
}

#[test]
fn a_jpeg_with_a_second_frame_header_is_refused() {
    // A small first frame to pass the checks and a huge second one for the decoder to trust.
    let original = red_blue_jpeg();
    let sof = original.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let len = usize::from(u16::from_be_bytes([original[sof + 2], original[sof + 3]]));
    let mut huge = original[sof..sof + 2 + len].to_vec();
    huge[5..9].copy_from_slice(&[0xFF, 0xF0, 0xFF, 0xF0]);
    let mut upload = original[..sof + 2 + len].to_vec();
    upload.extend_from_slice(&huge);
    upload.extend_from_slice(&original[sof + 2 + len..]);
    let upload = with_segments(&upload, &[exif_segment(Some(6))]);
    assert!(sanitize(&upload).is_err());
}

#[test]
fn endless_animations_are_refused() {
    // A GIF of 90 frames on a 4000×3000 canvas: over a billion pixels to decode.
    let mut head = GIF_HEAD.to_vec();
    head[6..10].copy_from_slice(&[0xA0, 0x0F, 0xB8, 0x0B]);
    let frames: Vec<u8> = (0..90).flat_map(|_| gif_frame()).collect();
    let gif = [head, frames, b"\x3b".to_vec()].concat();
    assert_too_large(&gif, "GIF animation");
}

// ---------------------------------------------------------------------------------------------
// Shrinking to a phone's screen, and sources too large to decode.

/// An RGB PNG of `width`×`height`, left half red and right half blue, made by the `png` crate.
fn big_png(width: u32, height: u32) -> Vec<u8> {
    let mut row = Vec::with_capacity(width as usize * 3);
    for x in 0..width {
        row.extend_from_slice(if x < width / 2 { &RED } else { &BLUE });
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let mut stream = writer.stream_writer().unwrap();
        for _ in 0..height {
            std::io::Write::write_all(&mut stream, &row).unwrap();
        }
        stream.finish().unwrap();
    }
    out
}

/// A GIF of `width`×`height` with one frame per entry of `colours` (palette: red, blue), each
/// frame filled with that colour index, made by the `gif` crate.
fn big_gif(width: u16, height: u16, colours: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let palette = [255, 0, 0, 0, 0, 255];
        let mut encoder = gif::Encoder::new(&mut out, width, height, &palette).unwrap();
        for &colour in colours {
            let pixels = vec![colour; usize::from(width) * usize::from(height)];
            let frame = gif::Frame::from_indexed_pixels(width, height, pixels, None);
            encoder.write_frame(&frame).unwrap();
        }
    }
    out
}

/// A lossless WebP of `width`×`height`, left half red and right half blue.
fn big_webp(width: u32, height: u32) -> Vec<u8> {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    for _ in 0..height {
        for x in 0..width {
            pixels.extend_from_slice(if x < width / 2 { &RED } else { &BLUE });
        }
    }
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&pixels, width, height, image_webp::ColorType::Rgb8)
        .unwrap();
    out
}

/// Decodes what was stored, whatever its format, to check its real size and colours.
fn decode_any(clean: &CleanImage) -> image::RgbImage {
    match clean.kind {
        ImageKind::Jpeg => decode_jpeg(&clean.bytes),
        ImageKind::Png => {
            let (width, height, rgba) = decode_png(&clean.bytes);
            let rgb = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
            image::RgbImage::from_raw(width, height, rgb).unwrap()
        }
        other => panic!("{other:?} is not re-encoded"),
    }
}

#[track_caller]
fn assert_shrunk(clean: &CleanImage, kind: ImageKind, size: (u32, u32)) -> image::RgbImage {
    assert_eq!(clean.kind, kind);
    assert_eq!((clean.width, clean.height), size, "announced size");
    let stored = decode_any(clean);
    assert_eq!(stored.dimensions(), size, "stored size");
    stored
}

#[test]
fn every_format_larger_than_a_phone_screen_is_shrunk() {
    // PNG, shrunk by 2 as its rows are decoded; still red on the left, blue on the right.
    let stored = assert_shrunk(&clean(&big_png(5000, 300)), ImageKind::Png, (2500, 150));
    let [.., left, right] = sides(&stored);
    assert_close(&left, RED, "left");
    assert_close(&right, BLUE, "right");
    // JPEG, decoded at half size directly (scaled IDCT) and re-encoded, metadata gone.
    let photo = heart_testkit::fixtures::jpeg_with_gps(6000, 200, 1);
    let clean_photo = clean(&photo);
    assert_shrunk(&clean_photo, ImageKind::Jpeg, (3000, 100));
    assert_absent(&clean_photo.bytes, &[b"Exif"]);
    // Turned and shrunk at once: orientation 6 stands it up.
    let turned = heart_testkit::fixtures::jpeg_with_gps(6000, 200, 6);
    assert_shrunk(&clean(&turned), ImageKind::Jpeg, (100, 3000));
    // A JPEG at the limit is not shrunk (nor re-encoded).
    let edge = heart_testkit::fixtures::jpeg(4096, 8);
    assert_eq!(clean(&edge).bytes.as_ref(), edge.as_slice());
    // GIF: the first frame (red) only, shrunk by 3, as a PNG.
    let gif = big_gif(9000, 30, &[0, 1]);
    let stored = assert_shrunk(&clean(&gif), ImageKind::Png, (3000, 10));
    assert!(stored.pixels().all(|p| p.0 == RED), "not the first frame");
    // WebP: shrunk by 2; lossless and opaque, so a PNG.
    let stored = assert_shrunk(&clean(&big_webp(8000, 40)), ImageKind::Png, (4000, 20));
    let [.., left, right] = sides(&stored);
    assert_close(&left, RED, "left");
    assert_close(&right, BLUE, "right");
    // A 16384-pixel side is shrunk by 4.
    assert_shrunk(&clean(&big_png(16_384, 8)), ImageKind::Png, (4096, 2));
}

#[test]
fn sources_beyond_the_decoding_limit_are_refused_from_their_headers() {
    // 7100×7100 (over 50 megapixels) and a 16385-pixel side, PNG and JPEG headers.
    let header_only = |width: u32, height: u32| {
        [
            PNG_SIGNATURE.to_vec(),
            ihdr(width, height, 8, 2),
            png_chunk(b"IDAT", &zlib_stored(&[0; 16])),
            png_chunk(b"IEND", b""),
        ]
        .concat()
    };
    assert_too_large(&header_only(7100, 7100), "PNG 7100×7100");
    assert_too_large(&header_only(16_385, 8), "PNG 16385 wide");
    let mut jpeg = red_blue_jpeg();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0x1B, 0xBC, 0x1B, 0xBC]);
    assert_too_large(&jpeg, "JPEG 7100×7100");
    // A progressive 7000×7000 JPEG with full-resolution colour keeps 294 MB of coefficients.
    let mut progressive = red_blue_jpeg();
    let sof = progressive
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .unwrap();
    progressive[sof + 1] = 0xC2;
    progressive[sof + 5..sof + 9].copy_from_slice(&[0x1B, 0x58, 0x1B, 0x58]);
    assert_eq!(progressive[sof + 9], 3, "three components");
    for component in 0..3 {
        progressive[sof + 11 + 3 * component] = 0x11;
    }
    assert_too_large(&progressive, "progressive JPEG");
    // Within the limit the header is trusted no further: the data must decode.
    assert!(matches!(
        sanitize(&header_only(7000, 7000)),
        Err(ImageError::NotAnImage)
    ));
}

#[test]
fn gif_and_webp_pixels_are_really_decoded() {
    // A GIF whose frame data is not LZW: the structure is fine, the pixels are not.
    let mut head = GIF_HEAD.to_vec();
    head.extend_from_slice(b"\x2c\0\0\0\0\x02\0\x02\0\0\x02");
    let garbage = [
        head,
        gif_sub_blocks(b"\xff\xff\xff\xff<script>"),
        b"\x3b".to_vec(),
    ]
    .concat();
    assert!(matches!(sanitize(&garbage), Err(ImageError::NotAnImage)));
    // A lossless WebP whose bitstream after its header is a script.
    let mut webp = big_webp(64, 64);
    let bitstream = webp.windows(4).position(|w| w == b"VP8L").unwrap() + 8;
    let script = b"<script>alert(document.cookie)</script>";
    let end = webp.len().min(bitstream + 5 + script.len());
    webp[bitstream + 5..end].copy_from_slice(&script[..end - bitstream - 5]);
    assert!(matches!(sanitize(&webp), Err(ImageError::NotAnImage)));
    // Their good versions pass.
    assert!(sanitize(&big_webp(64, 64)).is_ok());
    assert!(sanitize(&big_gif(64, 64, &[0, 1])).is_ok());
}

#[test]
fn an_animated_gif_within_the_limit_keeps_its_frames() {
    let gif = big_gif(300, 200, &[0, 1, 0]);
    let clean = clean(&gif);
    assert_eq!(clean.kind, ImageKind::Gif);
    assert_eq!((clean.width, clean.height), (300, 200));
    let frames = gif::DecodeOptions::new()
        .read_info(std::io::Cursor::new(&clean.bytes[..]))
        .unwrap()
        .into_iter()
        .count();
    assert_eq!(frames, 3);
}

#[test]
fn a_cancelled_decode_stops_half_way() {
    let upload = big_png(7000, 2000);
    let started = std::time::Instant::now();
    let whole = clean(&upload);
    let full = started.elapsed();
    assert_eq!((whole.width, whole.height), (3500, 1000));

    let cancel = heart_core::images::Cancel::new();
    let stopper = {
        let cancel = cancel.clone();
        let after = full / 5;
        std::thread::spawn(move || {
            std::thread::sleep(after);
            cancel.cancel();
        })
    };
    let started = std::time::Instant::now();
    let result = heart_core::images::sanitize_until(&upload, &cancel);
    let stopped = started.elapsed();
    stopper.join().unwrap();
    assert!(matches!(result, Err(ImageError::Abandoned)), "{result:?}");
    assert!(
        stopped < full / 2,
        "stopped after {stopped:?}; a whole decode takes {full:?}"
    );
    // Each format stops when already cancelled, before decoding anything.
    let cancelled = heart_core::images::Cancel::new();
    cancelled.cancel();
    for bytes in [
        big_png(64, 64),
        heart_testkit::fixtures::jpeg(64, 64),
        big_gif(64, 64, &[0]),
        big_webp(64, 64),
    ] {
        assert!(matches!(
            heart_core::images::sanitize_until(&bytes, &cancelled),
            Err(ImageError::Abandoned)
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Robustness: nothing panics, and whatever is accepted is stable.

/// An accepted image is already clean: sanitizing it again changes nothing.
fn check_stable(input: &[u8]) {
    if let Ok(clean) = sanitize(input) {
        // A GIF or WebP over 4096 px (a mutated canvas size) comes back as a still PNG or JPEG.
        let source = sniff(input);
        let shrunk_still = matches!(source, Some(ImageKind::Gif | ImageKind::Webp))
            && matches!(clean.kind, ImageKind::Png | ImageKind::Jpeg);
        assert!(
            Some(clean.kind) == source || shrunk_still,
            "{source:?} → {:?}",
            clean.kind
        );
        assert!(clean.width > 0 && clean.height > 0);
        assert!(clean.width.max(clean.height) <= heart_core::images::MAX_SIDE);
        let again = sanitize(&clean.bytes).unwrap_or_else(|e| {
            panic!("accepted {:?} then refused its clean copy: {e}", clean.kind)
        });
        assert_eq!(again.bytes, clean.bytes, "{:?} not stable", clean.kind);
        assert_eq!((again.width, again.height), (clean.width, clean.height));
    }
}

fn mutate(rng: &mut StdRng, sample: &[u8]) -> Vec<u8> {
    let mut bytes = sample.to_vec();
    let rounds = rng.gen_range(1..=3);
    for _ in 0..rounds {
        if bytes.is_empty() {
            break;
        }
        let at = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..7) {
            0 => bytes[at] = rng.gen(),
            1 => bytes[at] ^= 1 << rng.gen_range(0..8),
            2 => bytes.truncate(at),
            3 => {
                let junk: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                bytes.splice(at..at, junk);
            }
            4 => {
                let end = (at + rng.gen_range(1..32)).min(bytes.len());
                bytes.drain(at..end);
            }
            5 => {
                let value = *[0u8, 0xFF, 0x7F, 0x80].get(rng.gen_range(0..4)).unwrap();
                let end = (at + 4).min(bytes.len());
                bytes[at..end].fill(value);
            }
            _ => {
                let end = (at + rng.gen_range(1..64)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = rng.gen_range(0..bytes.len());
                bytes.splice(to..to, copy);
            }
        }
    }
    bytes
}

#[test]
fn mutated_images_never_panic_and_accepted_ones_are_stable() {
    let mut rng = StdRng::seed_from_u64(0x48_4541_5254);
    let samples = valid_samples();
    let mut accepted = 0;
    for (_, sample) in &samples {
        for _ in 0..700 {
            let input = mutate(&mut rng, sample);
            accepted += usize::from(sanitize(&input).is_ok());
            check_stable(&input);
        }
    }
    // Many mutations hit pixel data only and must still pass; many hit structure and must not.
    assert!(accepted > 300, "only {accepted} mutations accepted");
    assert!(accepted < samples.len() * 700 - 300, "{accepted} accepted");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    let magics: [&[u8]; 6] = [
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"RIFF\xff\xff\xff\x7fWEBP",
        b"GIF89a",
        b"\xff\xd8\xff\xe1\x00\x40Exif\0\0MM\0\x2a",
    ];
    for round in 0..3_000 {
        let len = rng.gen_range(0..512);
        let mut bytes = magics[round % magics.len()].to_vec();
        bytes.extend((0..len).map(|_| rng.gen::<u8>()));
        check_stable(&bytes);
    }
}

// ---------------------------------------------------------------------------------------------
// Animated PNG (APNG): kept within 4096 px, frame by frame.

/// One frame of an APNG to build: its rectangle, delay, disposal and blending, and its raw
/// samples (rows of `width` pixels in the image's colour type).
struct ApngFrame {
    rect: (u32, u32, u32, u32),
    delay: (u16, u16),
    dispose: png::DisposeOp,
    blend: png::BlendOp,
    samples: Vec<u8>,
}

/// An APNG of `width`×`height` in `color` (8-bit; `palette` for an indexed one), made by the `png`
/// crate: `default` as a default image outside the animation if given, then `frames`, looping
/// `plays` times; with a tEXt chunk to be removed.
fn apng(
    (width, height, color): (u32, u32, png::ColorType),
    palette: Option<&[u8]>,
    default: Option<&[u8]>,
    frames: &[ApngFrame],
    plays: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        if let Some(palette) = palette {
            encoder.set_palette(palette.to_vec());
        }
        encoder
            .add_text_chunk("Comment".into(), "secret-apng-text".into())
            .unwrap();
        encoder
            .set_animated(u32::try_from(frames.len()).unwrap(), plays)
            .unwrap();
        encoder.set_sep_def_img(default.is_some()).unwrap();
        let mut writer = encoder.write_header().unwrap();
        if let Some(default) = default {
            writer.write_image_data(default).unwrap();
        }
        for frame in frames {
            let (x, y, w, h) = frame.rect;
            writer.reset_frame_position().unwrap();
            writer.set_frame_dimension(w, h).unwrap();
            writer.set_frame_position(x, y).unwrap();
            writer
                .set_frame_delay(frame.delay.0, frame.delay.1)
                .unwrap();
            writer.set_dispose_op(frame.dispose).unwrap();
            writer.set_blend_op(frame.blend).unwrap();
            writer.write_image_data(&frame.samples).unwrap();
        }
        writer.finish().unwrap();
    }
    out
}

/// What a decoder sees in an APNG: the loop count, whether the default image stands outside the
/// animation, its colour type, and every image (the default one first) with its frame control
/// (rectangle, delay, disposal, blending; none for a separate default image) and raw samples.
#[allow(clippy::type_complexity)]
fn read_apng(
    bytes: &[u8],
) -> (
    u32,
    bool,
    png::ColorType,
    Vec<(Option<(u32, u32, u32, u32, u16, u16, u8, u8)>, Vec<u8>)>,
) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let control = reader.info().animation_control.expect("an animation");
    let separate = reader.info().frame_control.is_none();
    let color = reader.info().color_type;
    let count = control.num_frames + u32::from(separate);
    let mut images = Vec::new();
    for i in 0..count {
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        let fc = reader
            .info()
            .frame_control
            .filter(|_| !(i == 0 && separate));
        let fc = fc.map(|fc| {
            (
                fc.x_offset,
                fc.y_offset,
                fc.width,
                fc.height,
                fc.delay_num,
                fc.delay_den,
                fc.dispose_op as u8,
                fc.blend_op as u8,
            )
        });
        images.push((fc, buf));
    }
    (control.num_plays, separate, color, images)
}

fn filled(pixels: usize, sample: &[u8]) -> Vec<u8> {
    sample.repeat(pixels)
}

/// A frame over `rect` (x, y, width, height) shown for 1/10 s, nothing disposed, replacing what
/// is under it.
fn plain_frame(rect: (u32, u32, u32, u32), samples: Vec<u8>) -> ApngFrame {
    ApngFrame {
        rect,
        delay: (1, 10),
        dispose: png::DisposeOp::None,
        blend: png::BlendOp::Source,
        samples,
    }
}

/// A 6×4 RGB APNG of two frames, the second a 3×2 rectangle at (2, 1), with a tEXt chunk.
fn small_apng() -> Vec<u8> {
    let frame = |rect: (u32, u32, u32, u32), colour: &[u8]| {
        plain_frame(rect, filled((rect.2 * rect.3) as usize, colour))
    };
    let frames = [frame((0, 0, 6, 4), &RED), frame((2, 1, 3, 2), &BLUE)];
    apng((6, 4, png::ColorType::Rgb), None, None, &frames, 0)
}

#[test]
fn an_apng_keeps_every_frame_with_its_place_and_timing() {
    let frames = [
        ApngFrame {
            rect: (0, 0, 40, 30),
            delay: (1, 10),
            dispose: png::DisposeOp::None,
            blend: png::BlendOp::Source,
            samples: filled(40 * 30, &[255, 0, 0, 255]),
        },
        ApngFrame {
            rect: (8, 5, 16, 12),
            delay: (25, 100),
            dispose: png::DisposeOp::Background,
            blend: png::BlendOp::Over,
            samples: filled(16 * 12, &[0, 0, 255, 128]),
        },
        ApngFrame {
            rect: (30, 20, 10, 10),
            delay: (0, 0),
            dispose: png::DisposeOp::Previous,
            blend: png::BlendOp::Source,
            samples: (0..10 * 10 * 4).map(|i| (i * 7 % 251) as u8).collect(),
        },
    ];
    let upload = apng((40, 30, png::ColorType::Rgba), None, None, &frames, 3);
    assert!(contains(&upload, b"secret-apng-text"));
    let clean = clean(&upload);
    assert_eq!(clean.kind, ImageKind::Png);
    assert_eq!((clean.width, clean.height), (40, 30));
    assert_absent(&clean.bytes, &[b"secret-apng-text", b"tEXt"]);
    let types = png_chunk_types(&clean.bytes);
    assert!(types.contains(&"acTL".to_owned()), "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "fcTL").count(), 3);
    // The same animation, frame for frame, as the upload decodes to.
    assert_eq!(read_apng(&clean.bytes), read_apng(&upload));
    let (plays, separate, color, images) = read_apng(&clean.bytes);
    assert_eq!((plays, separate, color), (3, false, png::ColorType::Rgba));
    assert_eq!(images[1].0, Some((8, 5, 16, 12, 25, 100, 1, 1)));
}

#[test]
fn an_apng_keeps_its_separate_default_image_and_its_palette() {
    // Palette: red, blue, green; the default image (for viewers without APNG) is all green.
    let palette = [255, 0, 0, 0, 0, 255, 0, 255, 0];
    let frames: Vec<ApngFrame> = [0u8, 1]
        .iter()
        .map(|&index| plain_frame((0, 0, 24, 8), vec![index; 24 * 8]))
        .collect();
    let default = vec![2u8; 24 * 8];
    let upload = apng(
        (24, 8, png::ColorType::Indexed),
        Some(&palette),
        Some(&default),
        &frames,
        0,
    );
    let clean = clean(&upload);
    assert_eq!(read_apng(&clean.bytes), read_apng(&upload));
    let (plays, separate, color, images) = read_apng(&clean.bytes);
    assert_eq!((plays, separate, color), (0, true, png::ColorType::Indexed));
    assert_eq!(images.len(), 3);
    assert_eq!(images[0], (None, default));
    // A viewer without APNG shows the default image: all green.
    let (_, _, still) = decode_png(&clean.bytes);
    assert!(still.chunks(4).all(|p| p == [0, 255, 0, 255]));
}

#[test]
fn an_apng_over_4096_pixels_keeps_its_still_image_shrunk() {
    let (width, height) = (5000u32, 8u32);
    let frames: Vec<ApngFrame> = [RED, BLUE]
        .iter()
        .map(|colour| {
            plain_frame(
                (0, 0, width, height),
                filled((width * height) as usize, colour),
            )
        })
        .collect();
    let upload = apng((width, height, png::ColorType::Rgb), None, None, &frames, 0);
    let clean = clean(&upload);
    assert_eq!((clean.width, clean.height), (2500, 4));
    let types = png_chunk_types(&clean.bytes);
    assert!(
        !types
            .iter()
            .any(|t| t == "acTL" || t == "fcTL" || t == "fdAT"),
        "{types:?}"
    );
    let (_, _, still) = decode_png(&clean.bytes);
    assert!(
        still.chunks(4).all(|p| p == [255, 0, 0, 255]),
        "the first frame, red"
    );
}

#[test]
fn apng_frame_counts_are_checked_before_decoding() {
    // 90 frame controls on a 4000×3000 canvas: over a billion pixels to decode.
    let mut fctl = Vec::new();
    fctl.extend_from_slice(&0u32.to_be_bytes());
    fctl.extend_from_slice(&4000u32.to_be_bytes());
    fctl.extend_from_slice(&3000u32.to_be_bytes());
    fctl.extend_from_slice(&[0; 8]); // offsets
    fctl.extend_from_slice(&[0, 1, 0, 10, 0, 0]); // delay 1/10, dispose none, blend source
    let actl = |frames: u32| [frames.to_be_bytes(), 0u32.to_be_bytes()].concat();
    let bomb = |announced: u32, controls: usize| {
        [
            vec![PNG_SIGNATURE.to_vec(), ihdr(4000, 3000, 1, 0)],
            vec![png_chunk(b"acTL", &actl(announced))],
            vec![png_chunk(b"fcTL", &fctl); controls],
            vec![
                png_chunk(b"IDAT", &zlib_stored(&[0; 501])),
                png_chunk(b"IEND", b""),
            ],
        ]
        .concat()
        .concat()
    };
    assert_too_large(&bomb(90, 90), "APNG animation");
    // acTL must count the frames there are (the spec); a lie is a corrupt file.
    assert!(matches!(
        sanitize(&bomb(2, 90)),
        Err(ImageError::NotAnImage)
    ));
    assert!(matches!(sanitize(&bomb(0, 0)), Err(ImageError::NotAnImage)));
}

#[test]
fn a_corrupt_apng_frame_is_refused() {
    let frames: Vec<ApngFrame> = [RED, BLUE]
        .iter()
        .map(|colour| plain_frame((0, 0, 16, 16), filled(16 * 16, colour)))
        .collect();
    let upload = apng((16, 16, png::ColorType::Rgb), None, None, &frames, 0);
    assert_eq!(read_apng(&clean(&upload).bytes).3.len(), 2);
    // The second frame's data cut short (its fdAT chunk dropped) must not pass as an animation.
    let fdat = upload.windows(4).position(|w| w == b"fdAT").unwrap() - 4;
    let len = u32::from_be_bytes(upload[fdat..fdat + 4].try_into().unwrap()) as usize;
    let cut = [&upload[..fdat], &upload[fdat + 12 + len..]].concat();
    assert!(matches!(sanitize(&cut), Err(ImageError::NotAnImage)));
}

#[test]
fn an_animation_control_after_the_image_data_leaves_a_still_image() {
    // acTL must come before IDAT; after it, viewers show the still image, and so do we.
    let upload = small_apng();
    let at = |name: &[u8]| upload.windows(4).position(|w| w == name).unwrap() - 4;
    let chunk_end = |start: usize| {
        start + 12 + u32::from_be_bytes(upload[start..start + 4].try_into().unwrap()) as usize
    };
    let (actl, idat) = (at(b"acTL"), at(b"IDAT"));
    let moved = [
        &upload[..actl],
        &upload[chunk_end(actl)..chunk_end(idat)],
        &upload[actl..chunk_end(actl)],
        &upload[chunk_end(idat)..],
    ]
    .concat();
    let clean = clean(&moved);
    let types = png_chunk_types(&clean.bytes);
    assert_eq!(types, ["IHDR", "IDAT", "IEND"]);
    let (_, _, still) = decode_png(&clean.bytes);
    assert!(
        still.chunks(4).all(|p| p == [255, 0, 0, 255]),
        "the red frame"
    );
}
