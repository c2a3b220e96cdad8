//! Images through the API: every format shrunk to a phone's screen in what is stored, sources too
//! large refused with `GLOBAL_008`, corrupt GIF and WebP refused, a slow decode abandoned when its
//! request's time limit ends, and a bounded number of decodes at once.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::helpers::*;

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

/// An RGB PNG, left half red and right half blue (deflated: a 7000×7000 one is about 100 KB).
fn png(width: u32, height: u32) -> Vec<u8> {
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

/// A GIF with one frame per colour index (palette: red, blue).
fn gif(width: u16, height: u16, colours: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, width, height, &[255, 0, 0, 0, 0, 255]).unwrap();
        for &colour in colours {
            let pixels = vec![colour; usize::from(width) * usize::from(height)];
            encoder
                .write_frame(&gif::Frame::from_indexed_pixels(
                    width, height, pixels, None,
                ))
                .unwrap();
        }
    }
    out
}

/// A lossless WebP, all red.
fn webp(width: u32, height: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..width * height).flat_map(|_| RED).collect();
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&pixels, width, height, image_webp::ColorType::Rgb8)
        .unwrap();
    out
}

/// The size of a stored image, decoded in full (not just its header).
fn decoded_size(bytes: &[u8]) -> (u32, u32) {
    if bytes.starts_with(b"\x89PNG") {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut pixels).unwrap();
        (info.width, info.height)
    } else {
        let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).unwrap();
        (image.width(), image.height())
    }
}

async fn upload_avatar(app: &TestApp, member: &TestMember, bytes: Vec<u8>) -> TestResponse {
    app.multipart_as(
        member,
        "/member/uploadAvatar",
        &[
            Part::text("member_id", &member.id.to_string()),
            Part::file("file", "a.png", bytes),
        ],
    )
    .await
}

#[tokio::test]
async fn every_format_is_stored_shrunk_to_4096_pixels_a_side() {
    let app = TestApp::spawn().await;
    let kim = app.member("shrink").await;
    let uploads = [
        png(5000, 300),
        crate::fixtures::jpeg_with_gps(6000, 200, 6),
        gif(9000, 30, &[0, 1]),
        webp(8000, 40),
    ];
    let response = app.register_post(&kim, "big pictures", &uploads).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    let post = response.json();
    let urls: Vec<&str> = post["image_urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    // PNG by 2; the JPEG decoded at half size and stood up; GIF (first frame) by 3 and WebP by 2,
    // both as PNG.
    let expected = [
        (".png", (2500, 150)),
        (".jpg", (100, 3000)),
        (".png", (3000, 10)),
        (".png", (4000, 20)),
    ];
    for (url, (extension, size)) in urls.iter().zip(expected) {
        assert!(url.ends_with(extension), "{url}");
        let stored = app.fetch_media(url).await;
        assert_eq!(decoded_size(&stored), size, "{url}");
    }
}

#[tokio::test]
async fn too_large_or_corrupt_images_are_refused_and_leave_nothing() {
    let app = TestApp::spawn().await;
    let kim = app.member("refused").await;
    // Over 50 megapixels, from the header: GLOBAL_008.
    let mut huge = png(64, 64);
    huge[16..24].copy_from_slice(&[0, 0, 0x1B, 0xBC, 0, 0, 0x1B, 0xBC]);
    let ihdr_crc = crc32fast::hash(&huge[12..29]);
    huge[29..33].copy_from_slice(&ihdr_crc.to_be_bytes());
    let started = Instant::now();
    let response = app
        .register_post(&kim, "huge", &[crate::fixtures::jpeg(16, 16), huge])
        .await;
    assert_code(&response, "GLOBAL_008");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A GIF whose frame data is not LZW, a WebP whose bitstream is a script: POST_001.
    let bad_gif = [
        b"GIF89a\x08\0\x08\0\x80\0\0\xff\0\0\0\0\xff".as_slice(),
        b"\x2c\0\0\0\0\x08\0\x08\0\0\x02",
        b"\x0c\xff\xff\xff\xff<script>\0\x3b",
    ]
    .concat();
    let mut bad_webp = webp(32, 32);
    let bitstream = bad_webp.windows(4).position(|w| w == b"VP8L").unwrap() + 8;
    bad_webp[bitstream + 5..bitstream + 13].copy_from_slice(b"<script>");
    for bad in [bad_gif, bad_webp] {
        let response = app
            .register_post(&kim, "corrupt", &[crate::fixtures::jpeg(16, 16), bad])
            .await;
        assert_code(&response, "POST_001");
    }
    assert_eq!(app.count("posts").await, 0);
    assert!(app.stored_objects().await.is_empty());
}

#[tokio::test]
async fn a_slow_decode_is_abandoned_when_the_time_limit_ends_and_frees_its_turn() {
    let app = TestApp::spawn_with(&[
        ("HEART_REQUEST_TIMEOUT_SECS", "1"),
        ("HEART_IMAGE_DECODES", "1"),
    ])
    .await;
    let kim = app.member("slow").await;
    // 49 megapixels: within the limit, and seconds of work in a test build.
    let response = upload_avatar(&app, &kim, png(7000, 7000)).await;
    assert_code(&response, "GLOBAL_503");
    let decodes = &app.state.decodes;
    let timed_out = Instant::now();
    while decodes.running() > 0 || decodes.available() < 1 {
        assert!(
            timed_out.elapsed() < Duration::from_millis(500),
            "the decode goes on after its request ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(decodes.abandoned(), 1);
    assert!(app.stored_objects().await.is_empty());
    // The turn is free: the next upload is decoded at once.
    let response = upload_avatar(&app, &kim, png(64, 64)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
}

#[tokio::test]
async fn no_more_than_the_configured_number_of_images_are_decoded_at_once() {
    let app = TestApp::spawn_with(&[("HEART_IMAGE_DECODES", "2")]).await;
    let members = [
        app.member("turn-a").await,
        app.member("turn-b").await,
        app.member("turn-c").await,
    ];
    let image = png(2000, 1000);
    let uploads = members
        .iter()
        .map(|member| upload_avatar(&app, member, image.clone()));
    let responses = futures_util::future::join_all(uploads).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
    }
    // Three at once were asked for, two ran at once, never three.
    assert_eq!(app.state.decodes.limit(), 2);
    assert_eq!(app.state.decodes.peak(), 2);
    assert_eq!(app.state.decodes.running(), 0);
}

/// Avatars of several members replaced at once all land. Each replacement reads the old key and
/// writes the new one in one transaction; on SQLite two such transactions that had both read
/// failed the later write at once with `SQLITE_BUSY` (a `503`), and this test's neighbour above
/// failed now and then on a loaded machine.
#[tokio::test]
async fn avatars_replaced_at_once_all_land() {
    let app = TestApp::spawn_with(&[("HEART_IMAGE_DECODES", "8")]).await;
    let mut members = Vec::new();
    for n in 0..8 {
        members.push(app.member(&format!("at-once-{n}")).await);
    }
    for round in 0..3 {
        let uploads = members
            .iter()
            .map(|member| upload_avatar(&app, member, png(64 + round, 64)));
        for response in futures_util::future::join_all(uploads).await {
            assert_eq!(response.status, StatusCode::CREATED, "{}", response.text());
        }
    }
    // Every member has an avatar.
    let keys: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT avatar_key FROM members WHERE avatar_key IS NOT NULL")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(keys.len(), members.len());
}
