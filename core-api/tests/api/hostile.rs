//! Hostile input: fuzzed multipart bodies and images on the upload endpoints, a body far over the
//! cap, oversized headers on a real socket, and injection / path-traversal strings in every text
//! and path parameter of every endpoint.
//!
//! The fuzz loops are seeded (`HEART_FUZZ_SEED`, default fixed so CI is reproducible) and bounded
//! in cases and time (`HEART_FUZZ_CASES`). A failure names the seed and the case.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use bytes::Bytes;
use heart_core::images;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// What every answer must be.

/// Checks `response` is a success or a contract error (JSON `{"status","code","message"}`, a code
/// of the contract, `status` equal to the HTTP status) and never a 5xx: the backends are healthy
/// here, so the documented 5xx (storage or dependency down) cannot be right either. Returns the
/// code of an error.
#[track_caller]
fn assert_contract(response: &TestResponse, context: &str) -> Option<String> {
    let status = response.status;
    if status.is_success() {
        return None;
    }
    assert!(
        status.is_client_error(),
        "{context}: answered {status}: {}",
        response.text()
    );
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{context}: error content type {content_type:?}, body {:?}",
        response.text()
    );
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "{context}: error body not JSON ({e}): {:?}",
            response.text()
        )
    });
    let code = body["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{context}: no code in {body}"));
    let known = heart_shared::ErrorCode::parse(code)
        .unwrap_or_else(|| panic!("{context}: {code} is not a contract code"));
    assert_eq!(
        known.status(),
        status.as_u16(),
        "{context}: HTTP status of {code}"
    );
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(status.as_u16())),
        "{context}: {body}"
    );
    assert!(body["message"].is_string(), "{context}: {body}");
    Some(code.to_owned())
}

fn seed() -> u64 {
    std::env::var("HEART_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4845_4152_5432)
}

fn cases(default: usize) -> usize {
    std::env::var("HEART_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Seed images, each carrying metadata that must never reach storage.

/// A comment every seed hides in its metadata; no stored object may contain it.
const MARKER: &[u8] = b"HEART-SECRET-MARKER";

const WEBP_EXIF_XMP: &[u8] = include_bytes!("../fixtures/exif-xmp.webp");
const WEBP_LOSSY: &[u8] = include_bytes!("../fixtures/lossy.webp");

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// A PNG with a `tEXt` chunk and an `eXIf` chunk right after IHDR.
fn png_with_metadata() -> Vec<u8> {
    let png = fixtures::png(6, 5);
    // Signature (8) + IHDR chunk (4 + 4 + 13 + 4).
    let split = 8 + 25;
    let mut text = b"Comment\0".to_vec();
    text.extend_from_slice(MARKER);
    let exif = fixtures::exif_app1(1)[10..].to_vec(); // the TIFF part of the APP1 segment
    [
        &png[..split],
        &png_chunk(b"tEXt", &text),
        &png_chunk(b"eXIf", &exif),
        &png[split..],
    ]
    .concat()
}

/// A JPEG with GPS EXIF and a COM segment.
fn jpeg_with_metadata() -> Vec<u8> {
    let jpeg = fixtures::jpeg_with_gps(12, 9, 1);
    let mut com = vec![0xFF, 0xFE];
    com.extend_from_slice(&u16::try_from(MARKER.len() + 2).unwrap().to_be_bytes());
    com.extend_from_slice(MARKER);
    [&jpeg[..2], &com, &jpeg[2..]].concat()
}

/// A 2×1 GIF89a with a comment extension.
fn gif_with_metadata() -> Vec<u8> {
    let mut gif = b"GIF89a\x02\x00\x01\x00\x80\x00\x00".to_vec();
    gif.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00]); // palette: 2 colours
    gif.extend_from_slice(&[0x21, 0xFE]); // comment extension
    gif.push(u8::try_from(MARKER.len()).unwrap());
    gif.extend_from_slice(MARKER);
    gif.push(0);
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 2, 0, 1, 0, 0]); // image descriptor
                                                               // LZW data: clear, 0, 1, end (3-bit codes). (It used to end after one pixel of the two,
                                                               // which only a real decode notices.)
    gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x0A, 0x00]);
    gif.push(0x3B);
    gif
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("png", png_with_metadata()),
        ("jpeg", jpeg_with_metadata()),
        ("jpeg turned", fixtures::jpeg_with_gps(10, 7, 6)),
        ("webp", WEBP_EXIF_XMP.to_vec()),
        ("webp lossy", WEBP_LOSSY.to_vec()),
        ("gif", gif_with_metadata()),
    ]
}

/// Whether `bytes` still carry metadata: the marker, an Exif header, the GPS latitude, XMP.
fn metadata_in(bytes: &[u8]) -> Option<&'static str> {
    let gps: Vec<u8> = fixtures::GPS_LATITUDE
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    if fixtures::contains(bytes, MARKER) {
        Some("marker")
    } else if fixtures::contains(bytes, b"Exif\0\0") {
        Some("Exif header")
    } else if fixtures::contains(bytes, &gps) {
        Some("GPS latitude")
    } else if fixtures::contains(bytes, b"http://ns.adobe.com/xap/") {
        Some("XMP")
    } else {
        None
    }
}

/// Byte-level mutations that never copy bytes of the input elsewhere (a copy could move the
/// metadata into pixel data, where keeping it would be right).
fn mutate(rng: &mut StdRng, sample: &[u8]) -> Vec<u8> {
    let mut bytes = sample.to_vec();
    for _ in 0..rng.gen_range(1..=3) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.gen_range(0..bytes.len());
        match rng.gen_range(0..6) {
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
            _ => {
                let value = [0u8, 0xFF, 0x7F, 0x80][rng.gen_range(0..4)];
                let end = (at + 4).min(bytes.len());
                bytes[at..end].fill(value);
            }
        }
    }
    bytes
}

#[test]
fn sanitised_images_never_keep_metadata_whatever_the_input() {
    let samples = seeds();
    for (name, sample) in &samples {
        let clean = images::sanitize(sample).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        assert_eq!(metadata_in(&clean.bytes), None, "seed {name}");
    }
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut accepted = 0usize;
    let rounds = cases(600);
    for (name, sample) in &samples {
        for case in 0..rounds {
            let input = mutate(&mut rng, sample);
            // No panic, whatever the bytes; what is accepted is clean.
            if let Ok(clean) = images::sanitize(&input) {
                accepted += 1;
                assert_eq!(
                    metadata_in(&clean.bytes),
                    None,
                    "seed {seed}, {name} case {case}: metadata kept"
                );
                assert_eq!(images::sniff(&clean.bytes), Some(clean.kind));
            }
        }
    }
    for case in 0..rounds {
        let len = rng.gen_range(0..2048);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        assert!(
            images::sanitize(&bytes).is_err() || images::sniff(&bytes).is_some(),
            "seed {seed}, random case {case}"
        );
    }
    assert!(accepted > 100, "only {accepted} mutations accepted");
}

// ---------------------------------------------------------------------------------------------
// Fuzzing the upload endpoints.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upload {
    Post,
    Avatar,
}

impl Upload {
    fn path(self) -> &'static str {
        match self {
            Upload::Post => "/post/registerPost",
            Upload::Avatar => "/member/uploadAvatar",
        }
    }
}

/// One part as it goes on the wire: raw header lines and a body.
#[derive(Debug, Clone)]
struct RawPart {
    headers: Vec<Vec<u8>>,
    body: Vec<u8>,
}

fn text_part(name: &str, value: &[u8]) -> RawPart {
    RawPart {
        headers: vec![
            format!("Content-Disposition: form-data; name=\"{name}\"").into_bytes(),
            b"Content-Type: multipart/form-data; charset=utf-8".to_vec(),
        ],
        body: value.to_vec(),
    }
}

fn file_part(name: &str, filename: &str, bytes: Vec<u8>) -> RawPart {
    RawPart {
        headers: vec![
            format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"")
                .into_bytes(),
            b"Content-Type: image/*".to_vec(),
        ],
        body: bytes,
    }
}

fn random_text(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..8) {
        0 => Vec::new(),
        1 => b"   \t\r\n ".to_vec(),
        2 => "x".repeat(rng.gen_range(4990..5010)).into_bytes(),
        3 => "x".repeat(70 * 1024).into_bytes(), // over the text-part limit
        4 => (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect(), // likely not UTF-8
        5 => "\u{202E}하트 <script>alert(1)</script> ' OR 1=1 --\0"
            .as_bytes()
            .to_vec(),
        _ => b"hello from the fuzzer".to_vec(),
    }
}

fn random_member_id(rng: &mut StdRng, own: i64) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 => b"".to_vec(),
        1 => b"abc".to_vec(),
        2 => b"99999999999999999999999".to_vec(),
        3 => b"-1".to_vec(),
        4 => format!(" {own} ").into_bytes(),
        5 => (own + 1).to_string().into_bytes(),
        6 => vec![0xFF, 0xFE, b'1'],
        _ => own.to_string().into_bytes(),
    }
}

fn random_image(rng: &mut StdRng, seeds: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    let (_, seed) = &seeds[rng.gen_range(0..seeds.len())];
    match rng.gen_range(0..10) {
        0 => Vec::new(),
        1 => (0..rng.gen_range(1..4096)).map(|_| rng.gen()).collect(),
        2 => {
            // A real image's magic number followed by noise.
            let mut bytes = seed[..seed.len().min(12)].to_vec();
            bytes.extend((0..rng.gen_range(0..2048)).map(|_| rng.gen::<u8>()));
            bytes
        }
        3 => vec![0u8; 70 * 1024], // over the per-file limit of this app
        4..=6 => mutate(rng, seed),
        _ => seed.clone(),
    }
}

fn random_filename(rng: &mut StdRng) -> String {
    match rng.gen_range(0..6) {
        0 => "../../../../etc/passwd".to_owned(),
        1 => "a".repeat(5000),
        2 => "\u{202E}gpj.exe".to_owned(),
        3 => "x.png\0.php".to_owned(),
        _ => "IMG_0001.jpg".to_owned(),
    }
}

/// A multipart request for `upload`: a well-formed body (for `own`) mutated at the part level,
/// then at the byte level, with a more or less wrong `Content-Type`.
fn random_upload(
    rng: &mut StdRng,
    upload: Upload,
    own: i64,
    seeds: &[(&'static str, Vec<u8>)],
) -> (Option<String>, Vec<u8>) {
    // A third of the cases keep a well-formed request around their images, to reach storage.
    let clean = rng.gen_bool(0.35);
    let member_id = if clean {
        own.to_string().into_bytes()
    } else {
        random_member_id(rng, own)
    };
    let mut parts = vec![text_part("member_id", &member_id)];
    match upload {
        Upload::Post => {
            let content = if clean {
                b"fuzzed".to_vec()
            } else {
                random_text(rng)
            };
            parts.push(text_part("content", &content));
            for _ in 0..rng.gen_range(0..=4) {
                parts.push(file_part(
                    "files",
                    &random_filename(rng),
                    random_image(rng, seeds),
                ));
            }
        }
        Upload::Avatar => parts.push(file_part(
            "file",
            &random_filename(rng),
            random_image(rng, seeds),
        )),
    }

    // Part-level damage.
    let damage = if clean { 0 } else { rng.gen_range(0..=2) };
    for _ in 0..damage {
        let at = rng.gen_range(0..parts.len());
        match rng.gen_range(0..9) {
            0 => {
                parts.remove(at);
                if parts.is_empty() {
                    break;
                }
            }
            1 => parts.push(parts[at].clone()),
            2 => {
                let other = rng.gen_range(0..parts.len());
                parts.swap(at, other);
            }
            3 => parts[at]
                .headers
                .retain(|h| !h.starts_with(b"Content-Disposition")),
            4 => parts[at].headers[0] = b"Content-Disposition: form-data".to_vec(),
            5 => {
                // A huge part header.
                let mut h = b"X-Padding: ".to_vec();
                h.extend(std::iter::repeat_n(b'p', rng.gen_range(1_000..200_000)));
                parts[at].headers.push(h);
            }
            6 => {
                for i in 0..rng.gen_range(20..300) {
                    parts[at]
                        .headers
                        .push(format!("X-Header-{i}: {i}").into_bytes());
                }
            }
            7 => parts[at].headers.push(b"Content-Type: text/html".to_vec()),
            _ => parts[at].headers.push(vec![b'\xFF'; 40]), // not a header line at all
        }
    }

    let boundary = match if clean { 7 } else { rng.gen_range(0..8) } {
        0 => "b".repeat(200),
        1 => "with space and \"quote\"".to_owned(),
        2 => String::new(),
        _ => format!("heart-fuzz-{:08x}", rng.gen::<u32>()),
    };
    let mut body = Vec::new();
    if rng.gen_bool(0.1) {
        body.extend_from_slice(b"preamble junk\r\n");
    }
    for part in &parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        for h in &part.headers {
            body.extend_from_slice(h);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());

    // Byte-level damage.
    match if clean { 11 } else { rng.gen_range(0..12) } {
        0 => {
            let at = rng.gen_range(0..body.len());
            body.truncate(at);
        }
        1 => {
            let tail = format!("--{boundary}--\r\n").len();
            body.truncate(body.len() - tail);
        }
        2 => {
            body = String::from_utf8_lossy(&body)
                .replace("\r\n", "\n")
                .into_bytes()
        }
        3 => {
            let at = rng.gen_range(0..body.len());
            let junk: Vec<u8> = (0..rng.gen_range(1..64)).map(|_| rng.gen()).collect();
            body.splice(at..at, junk);
        }
        4 => {
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..body.len());
                body[at] = rng.gen();
            }
        }
        5 => body = (0..rng.gen_range(0..4096)).map(|_| rng.gen()).collect(),
        _ => {}
    }

    let content_type = match if clean { 13 } else { rng.gen_range(0..14) } {
        0 => None,
        1 => Some("application/json".to_owned()),
        2 => Some("multipart/form-data".to_owned()),
        3 => Some(format!("multipart/mixed; boundary={boundary}")),
        4 => Some(format!("multipart/form-data; boundary=\"{boundary}\"")),
        5 => Some("multipart/form-data; boundary=other-boundary".to_owned()),
        6 => Some(format!(
            "multipart/form-data; boundary={}",
            "z".repeat(5000)
        )),
        _ => Some(format!("multipart/form-data; boundary={boundary}")),
    };
    (content_type, body)
}

/// Every stored object key, and every key the database refers to (images and avatars).
async fn objects_and_references(app: &TestApp) -> (BTreeSet<String>, BTreeSet<String>) {
    let stored: BTreeSet<String> = app.stored_objects().await.into_iter().collect();
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let images: Vec<(String,)> = sqlx::query_as("SELECT object_key FROM post_images")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    referenced.extend(images.into_iter().map(|(k,)| k));
    let avatars: Vec<(String,)> =
        sqlx::query_as("SELECT avatar_key FROM members WHERE avatar_key IS NOT NULL")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    referenced.extend(avatars.into_iter().map(|(k,)| k));
    (stored, referenced)
}

async fn avatar_key(app: &TestApp, member: i64) -> Option<String> {
    let (key,): (Option<String>,) = sqlx::query_as("SELECT avatar_key FROM members WHERE id = ?")
        .bind(member)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    key
}

/// Random and mutated multipart bodies on both upload endpoints: every answer is a success or a
/// contract error, never a 5xx (a panic would be a `GLOBAL_500`); a refused upload leaves no post
/// row, no object and the old avatar; storage always holds exactly the objects the rows name;
/// no stored image keeps metadata.
#[tokio::test]
async fn fuzzed_uploads_answer_the_contract_and_leave_nothing_half_written() {
    let app = TestApp::spawn_with(&[
        ("HEART_RATE_LIMITS_ENABLED", "false"),
        ("HEART_MAX_UPLOAD_FILES", "3"),
        ("HEART_MAX_UPLOAD_FILE_BYTES", "65536"),
        ("HEART_MAX_UPLOAD_REQUEST_BYTES", "262144"),
    ])
    .await;
    let kim = app.member("kim").await;
    let seeds = seeds();
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(25);
    let max_cases = cases(500);
    let (mut created, mut refused, mut cases_run) = (0usize, 0usize, 0usize);
    let mut codes: BTreeSet<String> = BTreeSet::new();
    while cases_run < max_cases && Instant::now() < deadline {
        let case = cases_run;
        cases_run += 1;
        let upload = if rng.gen_bool(0.6) {
            Upload::Post
        } else {
            Upload::Avatar
        };
        let (content_type, body) = random_upload(&mut rng, upload, kim.id, &seeds);
        let context = format!(
            "seed {seed} case {case} {:?} ({} bytes, content type {:?})",
            upload,
            body.len(),
            content_type.as_deref().map(|c| &c[..c.len().min(80)])
        );
        let posts_before = app.count("posts").await;
        let avatar_before = avatar_key(&app, kim.id).await;
        let (objects_before, _) = objects_and_references(&app).await;

        let mut request = Request::post(upload.path()).header(
            header::AUTHORIZATION,
            format!("Bearer {}", kim.access_token),
        );
        if let Some(content_type) = &content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = app.send(request.body(Body::from(body)).unwrap()).await;
        let code = assert_contract(&response, &context);

        let (objects, references) = objects_and_references(&app).await;
        assert_eq!(objects, references, "{context}: objects and rows disagree");
        assert_eq!(app.count("storage_garbage").await, 0, "{context}");
        match code {
            Some(code) => {
                refused += 1;
                codes.insert(code);
                assert_eq!(app.count("posts").await, posts_before, "{context}");
                assert_eq!(avatar_key(&app, kim.id).await, avatar_before, "{context}");
                assert_eq!(objects, objects_before, "{context}: objects changed");
            }
            None => {
                created += 1;
                assert_eq!(response.status, StatusCode::CREATED, "{context}");
                let answer = response.json();
                let urls: Vec<String> = match upload {
                    Upload::Post => {
                        assert_eq!(app.count("posts").await, posts_before + 1, "{context}");
                        answer["image_urls"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|u| u.as_str().unwrap().to_owned())
                            .collect()
                    }
                    Upload::Avatar => {
                        vec![answer["avatar_url"].as_str().unwrap().to_owned()]
                    }
                };
                for url in urls {
                    assert!(
                        !url.contains("etc/passwd") && !url.contains("IMG_"),
                        "{url}"
                    );
                    let stored = app.fetch_media(&url).await;
                    assert_eq!(
                        metadata_in(&stored),
                        None,
                        "{context}: metadata stored in {url}"
                    );
                }
            }
        }
    }
    eprintln!("fuzzed uploads: {cases_run} cases, {created} created, {refused} refused: {codes:?}");
    assert!(cases_run >= 100, "only {cases_run} cases in the time given");
    // The generator must reach both sides of the checks, and the main refusals.
    assert!(created >= 10, "only {created} uploads accepted");
    for expected in ["GLOBAL_004", "GLOBAL_007", "GLOBAL_008"] {
        assert!(
            codes.contains(expected),
            "{expected} never produced: {codes:?}"
        );
    }
    assert!(
        codes.contains("POST_001") || codes.contains("MEMBER_004"),
        "no image refused: {codes:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A body far over the cap.

/// A `multipart/form-data` body of `parts` file parts of `part_bytes` zeros each, made lazily as
/// it is read; `read` counts the bytes handed to the server.
fn endless_upload(
    member_id: i64,
    field: &'static str,
    parts: usize,
    part_bytes: usize,
    read: Arc<AtomicUsize>,
) -> (String, Body) {
    const CHUNK: usize = 64 * 1024;
    let boundary = "heart-endless";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"member_id\"\r\n\r\n{member_id}\r\n"
    );
    let part_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n"
    );
    let chunks_per_part = part_bytes / CHUNK;
    let stream = futures_util::stream::iter(0..=parts * (chunks_per_part + 1)).map(move |i| {
        let chunk = if i == 0 {
            Bytes::from(head.clone())
        } else if (i - 1) % (chunks_per_part + 1) == 0 {
            let mut b = if i == 1 { Vec::new() } else { b"\r\n".to_vec() };
            b.extend_from_slice(part_head.as_bytes());
            Bytes::from(b)
        } else {
            Bytes::from(vec![0u8; CHUNK])
        };
        read.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk)
    });
    use futures_util::StreamExt as _;
    (
        format!("multipart/form-data; boundary={boundary}"),
        Body::from_stream(stream),
    )
}

#[tokio::test]
async fn a_body_far_over_the_request_cap_is_refused_without_reading_it_all() {
    let app = TestApp::spawn().await;
    let kim = app.member("kim").await;
    let limits = app.state.config.uploads;
    const MIB: usize = 1024 * 1024;
    // A post of 22 files of 9 MiB, each under the per-file limit, 198 MiB in all: three times
    // the request cap. An avatar of one file of 198 MiB: twenty times the file limit. Either is
    // refused having read at most the request cap: the multipart parser reads ahead whatever the
    // body has ready (here, everything, at once), so even the file limit is only enforced once
    // that much is buffered, but never more than the request cap is read or held.
    let cap = limits.max_request_bytes;
    for (path, field, parts, part_bytes) in [
        ("/post/registerPost", "files", 22, 9 * MIB),
        ("/member/uploadAvatar", "file", 1, 198 * MIB),
    ] {
        assert!(parts * part_bytes > 3 * cap);
        let read = Arc::new(AtomicUsize::new(0));
        let (content_type, body) = endless_upload(kim.id, field, parts, part_bytes, read.clone());
        let started = Instant::now();
        let response = app
            .send(
                Request::post(path)
                    .header(
                        header::AUTHORIZATION,
                        format!("Bearer {}", kim.access_token),
                    )
                    .header(header::CONTENT_TYPE, content_type)
                    .body(body)
                    .unwrap(),
            )
            .await;
        let read = read.load(Ordering::SeqCst);
        eprintln!(
            "{path}: {} after reading {read} bytes in {:?}",
            response.status,
            started.elapsed()
        );
        assert_code(&response, "GLOBAL_008");
        // Refused at the cap: the body was not read further than a chunk or so past it.
        assert!(read <= cap + MIB, "{path}: read {read} bytes, cap {cap}");
        assert_eq!(app.count("posts").await, 0);
        assert!(app.stored_objects().await.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Oversized headers, on a real socket: hyper parses them before the router sees anything.

/// Serves `app`'s router on 127.0.0.1 as the core's `main` does.
async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    addr
}

/// Writes `head` then `filler` bytes (at most `max_filler`) then `tail`, while reading the answer.
/// Returns the answer read until the server closed, and how many bytes could be written.
async fn raw_exchange(
    addr: SocketAddr,
    head: Vec<u8>,
    filler: u8,
    max_filler: usize,
    tail: Vec<u8>,
) -> (String, usize) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let writing = tokio::spawn(async move {
        writer.write_all(&head).await?;
        counter.fetch_add(head.len(), Ordering::SeqCst);
        let chunk = vec![filler; 16 * 1024];
        let mut sent = 0;
        while sent < max_filler {
            writer.write_all(&chunk).await?;
            sent += chunk.len();
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
        }
        writer.write_all(&tail).await?;
        counter.fetch_add(tail.len(), Ordering::SeqCst);
        Ok::<_, std::io::Error>(writer)
    });
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    // A complete answer without a body, or with its Content-Length read.
                    if let Some(end) = find(&answer, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if answer.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 20 s");
    writing.abort();
    let _ = writing.await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        written.load(Ordering::SeqCst),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A header of 32 MiB and a request of 500 headers are refused by hyper with a bare
/// `431 Request Header Fields Too Large` after at most its read buffer (~400 KiB), long before
/// the whole header is sent; the router (and so the contract layer) never sees them, so the body
/// is empty, not the contract's JSON (see the note in the report for the lead). A large but
/// acceptable header still reaches the router and gets a contract answer.
#[tokio::test]
async fn oversized_headers_are_refused_before_they_are_read_whole() {
    let app = TestApp::spawn().await;
    let addr = serve(&app).await;
    const MIB: usize = 1024 * 1024;

    // One header of 32 MiB.
    let (answer, written) = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Huge: ".to_vec(),
        b'a',
        32 * MIB,
        b"\r\n\r\n".to_vec(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "huge header answered {answer:?}"
    );
    assert!(written < 32 * MIB, "the whole header was read: {written}");
    let body = &answer[find(answer.as_bytes(), b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(body, "", "hyper's own answer has no body");

    // 500 small headers (hyper allows 100).
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    for i in 0..500 {
        head.extend_from_slice(format!("X-Header-{i}: {i}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let (answer, _) = raw_exchange(addr, head, b' ', 0, Vec::new()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "500 headers answered {answer:?}"
    );

    // 64 KiB of header is allowed through to the router: a contract answer.
    let mut head = b"GET /no/such/route HTTP/1.1\r\nHost: localhost\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'b', 64 * 1024));
    head.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let (answer, _) = raw_exchange(addr, head, b' ', 0, Vec::new()).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer:?}");
    assert!(answer.contains("\"code\":\"GLOBAL_001\""), "{answer:?}");
}

// ---------------------------------------------------------------------------------------------
// Injection and path traversal in every parameter.

const HOSTILE: &[&str] = &[
    "' OR 1=1 --",
    "1 OR 1=1",
    "1; DROP TABLE members; --",
    "\" OR \"\"=\"",
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..\\..\\windows\\win.ini",
    "a\0b",
    "\u{202E}gnp.exe",
    "<script>",
    "<script>alert(1)</script>",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "\u{FEFF}\u{200B}",
    "하트 ❤️ 𝕳",
    "-1",
    "0",
    "9223372036854775808",
    "1e3",
    " 7 ",
    "",
];

fn hostile_strings() -> Vec<String> {
    let mut all: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    all.push("A".repeat(10_000));
    all.push("\u{202E}".repeat(3_000));
    all
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn json_request(method: Method, path: &str, token: Option<&str>, body: &Value) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

fn bare_request(method: Method, path: &str, token: Option<&str>) -> Option<Request<Body>> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::empty()).ok()
}

fn multipart_request(path: &str, token: &str, parts: &[Part]) -> Request<Body> {
    let (content_type, body) = multipart_body(parts);
    Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))
        .unwrap()
}

/// Every endpoint with `p` in each of its text, query and path parameters (one at a time), as
/// `me` where it needs a caller, about `other` where it needs a target.
fn hostile_requests(p: &str, me: &TestMember, other: i64) -> Vec<(String, Request<Body>)> {
    let t = Some(me.access_token.as_str());
    let id = me.id;
    let e = enc(p);
    let mut out: Vec<(String, Request<Body>)> = Vec::new();
    let mut add = |name: &str, request: Option<Request<Body>>| {
        if let Some(request) = request {
            out.push((name.to_owned(), request));
        }
    };
    use Method as M;
    // Auth.
    for body in [
        json!({ "email": p }),
        json!({ "email": format!("{p}@example.com") }),
    ] {
        add(
            "emailVerificationCode",
            Some(json_request(
                M::POST,
                "/auth/emailVerificationCode",
                None,
                &body,
            )),
        );
    }
    for body in [
        json!({ "email": me.email, "verification_code": p }),
        json!({ "email": p, "verification_code": "ABCDEFGH" }),
    ] {
        add(
            "confirmVerificationCode",
            Some(json_request(
                M::POST,
                "/auth/confirmVerificationCode",
                None,
                &body,
            )),
        );
    }
    for body in [
        json!({ "email": p, "name": "n", "nickname": "n", "password": "passw0rd-1" }),
        json!({ "email": me.email, "name": p, "nickname": p, "password": p }),
    ] {
        add(
            "join",
            Some(json_request(M::POST, "/auth/join", None, &body)),
        );
    }
    for body in [
        json!({ "email": p, "password": p }),
        json!({ "email": me.email, "password": p }),
    ] {
        add(
            "login",
            Some(json_request(M::POST, "/auth/login", None, &body)),
        );
    }
    for body in [
        json!({ "member_id": p, "refresh_token": me.refresh_token }),
        json!({ "member_id": id, "refresh_token": p }),
    ] {
        add(
            "reissueToken",
            Some(json_request(M::POST, "/auth/reissueToken", None, &body)),
        );
    }
    add(
        "verifyAccessToken",
        bare_request(M::GET, "/auth/verifyAccessToken", Some(p)),
    );
    add("logout", bare_request(M::POST, "/auth/logout", Some(p)));

    // Member.
    add(
        "profile",
        bare_request(M::GET, &format!("/member/profile?member_id={e}"), t),
    );
    for path in [
        "/member/block",
        "/member/unblock",
        "/member/report",
        "/member/follow",
        "/member/unfollow",
    ] {
        for body in [
            json!({ "member_id": p, "target_id": other }),
            json!({ "member_id": id, "target_id": p }),
        ] {
            add(path, Some(json_request(M::POST, path, t, &body)));
        }
    }
    add(
        "report reason",
        Some(json_request(
            M::POST,
            "/member/report",
            t,
            &json!({ "member_id": id, "target_id": other, "reason": p }),
        )),
    );
    for path in [
        "/member/getBlockingMembers",
        "/member/followers",
        "/member/followings",
    ] {
        add(
            path,
            bare_request(M::GET, &format!("{path}?member_id={e}"), t),
        );
        add(
            path,
            bare_request(
                M::GET,
                &format!("{path}?member_id={id}&page={e}&size=10"),
                t,
            ),
        );
    }
    add(
        "member delete",
        bare_request(M::DELETE, &format!("/member/delete/{e}"), t),
    );
    add(
        "member delete raw",
        bare_request(M::DELETE, &format!("/member/delete/{p}"), t),
    );
    add(
        "uploadAvatar member_id",
        Some(multipart_request(
            "/member/uploadAvatar",
            &me.access_token,
            &[
                Part::text("member_id", p),
                Part::file("file", "a.png", fixtures::png(2, 2)),
            ],
        )),
    );

    // Post.
    for query in [
        format!("member_id={e}&page=0&size=10"),
        format!("member_id={id}&page={e}&size=10"),
        format!("member_id={id}&page=0&size={e}"),
        format!("member_id={id}&page=0&size=10&cursor={e}"),
    ] {
        add(
            "home feed",
            bare_request(M::GET, &format!("/post/posts?{query}"), t),
        );
        add(
            "following feed",
            bare_request(M::GET, &format!("/post/following?{query}"), t),
        );
        add(
            "reports",
            bare_request(M::GET, &format!("/admin/reports?{query}"), t),
        );
    }
    add(
        "writer feed",
        bare_request(M::GET, &format!("/post/posts/{e}?page=0&size=10"), t),
    );
    add(
        "writer feed raw",
        bare_request(M::GET, &format!("/post/posts/{p}?page=0&size=10"), t),
    );
    add(
        "post delete",
        bare_request(M::DELETE, &format!("/post/delete/{e}"), t),
    );
    add(
        "registerPost member_id",
        Some(multipart_request(
            "/post/registerPost",
            &me.access_token,
            &[Part::text("member_id", p), Part::text("content", "hi")],
        )),
    );
    add(
        "registerPost file name",
        Some(multipart_request(
            "/post/registerPost",
            &me.access_token,
            &[
                Part::text("member_id", &id.to_string()),
                Part::text("content", "named file"),
                Part::file("files", p, fixtures::png(2, 2)),
            ],
        )),
    );

    // Anything else: no route, and media keys.
    add(
        "unknown route",
        bare_request(M::GET, &format!("/{e}"), None),
    );
    add("media", bare_request(M::GET, &format!("/media/{e}"), None));
    add(
        "media raw",
        bare_request(M::GET, &format!("/media/{p}"), None),
    );
    out
}

/// Path traversal through `/media/`: nothing outside the media folder is ever served, even with
/// an image extension and percent-encoded or doubled separators.
#[tokio::test]
async fn media_keys_never_reach_outside_the_media_folder() {
    let app = TestApp::spawn().await;
    // Canaries beside and above the media folder, with names the media route would accept.
    let data = app.state.config.data_dir.clone();
    for path in [data.join("secret.png"), data.join("media-secret.png")] {
        std::fs::write(path, b"CANARY").unwrap();
    }
    let paths = [
        "/media/../secret.png",
        "/media/..%2fsecret.png",
        "/media/%2e%2e%2fsecret.png",
        "/media/%2e%2e/secret.png",
        "/media/.%2e/secret.png",
        "/media/avatars/..%2f..%2fsecret.png",
        "/media/avatars/2026/..%2f..%2f..%2fsecret.png",
        "/media/..%5csecret.png",
        "/media/%2fetc%2fpasswd",
        "/media//etc/passwd",
        "/media/....//secret.png",
        "/media/..%252fsecret.png",
        "/media/%c0%ae%c0%ae%2fsecret.png",
        "/media/secret.png%00.png",
        "/media/../../../../../../etc/passwd",
        "/media/..",
        "/media/heart.db",
        "/media/../heart.db",
        "/media/..%2fheart.db",
    ];
    for path in paths {
        let Some(request) = bare_request(Method::GET, path, None) else {
            continue;
        };
        let response = app.send(request).await;
        assert!(
            !fixtures::contains(&response.body, b"CANARY")
                && !fixtures::contains(&response.body, b"root:")
                && !fixtures::contains(&response.body, b"SQLite format"),
            "{path} served a file outside the media folder"
        );
        // No such media (or, for bytes that are not UTF-8 once decoded, an unreadable path).
        let code = assert_contract(&response, path);
        assert!(
            matches!(code.as_deref(), Some("GLOBAL_001" | "GLOBAL_004")),
            "{path}: {code:?}"
        );
    }
}

/// Injection, traversal, NUL, right-to-left, very long strings in every parameter of every
/// endpoint: a contract error or a success, never a 5xx; no table is dropped, nobody deleted.
#[tokio::test]
async fn hostile_strings_in_every_parameter_get_contract_answers() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMITS_ENABLED", "false")]).await;
    let me = app.member("me").await;
    let other = app.member("other").await;
    let members_before = app.count("members").await;
    let mut requests = 0;
    for p in hostile_strings() {
        for (name, request) in hostile_requests(&p, &me, other.id) {
            requests += 1;
            let shown: String = p.chars().take(40).collect();
            let response = app.send(request).await;
            let context = format!("{name} with {shown:?}");
            assert_contract(&response, &context);
            assert!(
                !fixtures::contains(&response.body, b"root:"),
                "{context}: /etc/passwd served"
            );
        }
    }
    assert!(requests > 1000, "{requests}");
    // Still there, still working: no statement was injected, no account deleted.
    assert_eq!(app.count("members").await, members_before);
    assert_eq!(
        app.verify_token(&me.access_token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.verify_token(&other.access_token).await.status,
        StatusCode::OK
    );
    // Every object stored (avatars, post images) is a key the server made, not a client's name.
    for key in app.stored_objects().await {
        assert!(
            key.starts_with("avatars/") || key.starts_with("posts/"),
            "{key}"
        );
        assert!(!key.contains(".."), "{key}");
    }
}

/// The text the app stores is stored verbatim (after the contract's trimming): hostile nicknames,
/// names and post contents come back byte for byte, never interpreted.
#[tokio::test]
async fn hostile_text_that_is_valid_is_stored_verbatim() {
    let app = TestApp::spawn_with(&[("HEART_RATE_LIMITS_ENABLED", "false")]).await;
    let me = app.member("me").await;
    let mut stored_names = 0;
    let mut stored_posts = 0;
    for p in hostile_strings() {
        let trimmed = p.trim();
        // A post with this content.
        let response = app.register_post(&me, &p, &[]).await;
        if assert_contract(&response, &format!("post {p:?}")).is_none() {
            stored_posts += 1;
            let post_id = response.json()["post_id"].as_i64().unwrap();
            let page = app
                .get_as(&me, &format!("/post/posts/{}?page=0&size=1", me.id))
                .await
                .json();
            assert_eq!(page["posts"][0]["id"].as_i64(), Some(post_id));
            assert_eq!(page["posts"][0]["content"].as_str(), Some(trimmed), "{p:?}");
        }
        // A member with this name and nickname.
        let email = unique_email("hostile");
        assert_eq!(app.send_code(&email).await.status, StatusCode::ACCEPTED);
        let code = app.last_code_for(&email);
        assert_eq!(app.confirm(&email, &code).await.status, StatusCode::OK);
        let joined = app
            .post_json(
                "/auth/join",
                json!({ "email": email, "name": p, "nickname": p, "password": PASSWORD }),
            )
            .await;
        if assert_contract(&joined, &format!("join {p:?}")).is_none() {
            stored_names += 1;
            let id = joined.json()["member_id"].as_i64().unwrap();
            let profile = app
                .get_as(&me, &format!("/member/profile?member_id={id}"))
                .await
                .json();
            // Names are stored in NFC (issue 12); everything else about them verbatim.
            let name = heart_core::auth::validation::normalize_name(&p);
            assert_eq!(profile["nickname"].as_str(), Some(name.as_str()), "{p:?}");
            assert_eq!(profile["name"].as_str(), Some(name.as_str()), "{p:?}");
            let login = app.login(&email, PASSWORD).await.json();
            assert_eq!(login["nickname"].as_str(), Some(name.as_str()), "{p:?}");
        }
    }
    // Most of them are fine text and must have been stored.
    assert!(stored_posts >= 15, "{stored_posts} posts stored");
    assert!(stored_names >= 12, "{stored_names} members stored");
}
