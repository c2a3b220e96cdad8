//! Oversized requests through the edge: refused early, in the contract's error format wherever
//! the edge host gets to answer (see `edge/host/src/server.rs`, `refuse_early`).

use crate::helpers::{assert_contract_error, png, Part, RawAnswer, Setup, TestStack};

#[track_caller]
fn assert_raw_error(answer: &RawAnswer, code: &str) {
    assert_contract_error(
        answer.status,
        answer.header("content-type"),
        &answer.body,
        code,
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let stack = TestStack::start().await;
    let member = stack.member("big").await;
    // 200 MB announced, nothing sent: the edge must not wait for it (the raw read gives up
    // after 10 s; the answer comes at once).
    let started = std::time::Instant::now();
    let answer = stack
        .raw(
            format!(
                "POST /post/registerPost HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
                 content-type: multipart/form-data; boundary=b\r\ncontent-length: 200000000\r\n\r\n--b\r\n",
                member.access_token
            )
            .as_bytes(),
        )
        .await;
    assert_raw_error(&answer, "GLOBAL_008");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    // Not authenticated either: the size is checked first, still a contract error.
    let answer = stack
        .raw(b"POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 134217729\r\n\r\n{")
        .await;
    assert_raw_error(&answer, "GLOBAL_008");
}

#[tokio::test]
async fn an_upload_over_the_cores_limit_is_refused_through_the_edge() {
    let stack = TestStack::start_with(
        Setup::default()
            .core("HEART_MAX_UPLOAD_REQUEST_BYTES", "1048576")
            .core("HEART_MAX_UPLOAD_FILE_BYTES", "524288"),
    )
    .await;
    let member = stack.member("upload").await;
    // A real PNG just over the per-file limit (stored deflate blocks: ~3 bytes a pixel).
    let big = png(450, 450);
    assert!(
        big.len() > 524_288 && big.len() < 1_048_576,
        "{}",
        big.len()
    );
    let answer = stack
        .register_post(&member, "too big", std::slice::from_ref(&big))
        .await;
    answer.assert_error("GLOBAL_008");
    // Two files under the per-file limit but over the request limit.
    let half = png(300, 300);
    let answer = stack
        .register_post(
            &member,
            "too many bytes",
            &[half.clone(), half.clone(), half.clone(), half],
        )
        .await;
    answer.assert_error("GLOBAL_008");
    // Nothing was stored: the member has no posts, and a small post still works.
    let profile = stack
        .get_as(&member, &format!("/member/profile?member_id={}", member.id))
        .await
        .ok_json();
    assert_eq!(profile["post_size"], 0);
    let avatar = stack
        .multipart_as(
            &member,
            "/member/uploadAvatar",
            &[
                Part::text("member_id", &member.id.to_string()),
                Part::file("file", "big.png", big),
            ],
        )
        .await;
    avatar.assert_error("GLOBAL_008");
    assert_eq!(
        stack
            .register_post(&member, "small", &[png(2, 2)])
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn too_many_or_too_large_headers_get_a_contract_error() {
    let stack = TestStack::start().await;

    // 91 headers (the edge accepts 90, so that with its own the core's limit of 100 is kept).
    let mut request = String::from("GET /no/such/route HTTP/1.1\r\nhost: x\r\n");
    for i in 0..90 {
        request.push_str(&format!("x-filler-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    assert_raw_error(&stack.raw(request.as_bytes()).await, "GLOBAL_004");

    // One header of 40 KiB (the edge accepts 32 KiB of request line and headers).
    let request = format!(
        "GET /post/posts HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\r\n",
        "c".repeat(40 * 1024)
    );
    let answer = stack.raw(request.as_bytes()).await;
    assert_raw_error(&answer, "GLOBAL_004");
    let message = serde_json::from_slice::<serde_json::Value>(&answer.body).expect("JSON")
        ["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.contains("headers"), "{message}");

    // At the limit: forwarded as usual, and the core parses it too (it answers its 404).
    let mut request = String::from("GET /no/such/route HTTP/1.1\r\nhost: x\r\n");
    for i in 0..89 {
        request.push_str(&format!("x-filler-{i}: {i}\r\n"));
    }
    request.push_str("\r\n");
    assert_raw_error(&stack.raw(request.as_bytes()).await, "GLOBAL_001");

    // Beyond what hyper parses at all (1 MiB of head, or more than 1024 headers), hyper answers
    // by itself before the host sees a request: a bare 431 without a body. Documented in
    // edge/README.md ("Not done yet"); pinned here so a change is noticed.
    let request = format!(
        "GET /post/posts HTTP/1.1\r\nhost: x\r\ncookie: {}\r\n\r\n",
        "c".repeat(2 * 1024 * 1024)
    );
    let answer = stack.raw(request.as_bytes()).await;
    assert_eq!(answer.status, 431, "{answer:?}");
    assert!(answer.body.is_empty(), "{answer:?}");
    let mut request = String::from("GET /no/such/route HTTP/1.1\r\nhost: x\r\n");
    for i in 0..1100 {
        request.push_str(&format!("x-{i}: 1\r\n"));
    }
    request.push_str("\r\n");
    assert_eq!(stack.raw(request.as_bytes()).await.status, 431);

    // The edge still serves normally afterwards.
    assert_eq!(stack.get("/healthz").await.status, 200);
}
