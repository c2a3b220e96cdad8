//! The core's own server over real sockets (`serve.rs`): slow request heads are disconnected,
//! slow JSON bodies answered `GLOBAL_004` and disconnected, and open connections are capped —
//! while other clients keep being served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use heart_core::clock::Clock;
use heart_core::{App, Config};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// A core served on a real loopback socket until the returned guard is dropped.
struct Served {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn serve(overrides: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("HEART_DATA_DIR".into(), dir.path().display().to_string());
    vars.insert("HEART_ARGON2_MEMORY_KIB".into(), "1024".into());
    vars.insert("HEART_ARGON2_ITERATIONS".into(), "1".into());
    for (k, v) in overrides {
        vars.insert((*k).into(), (*v).into());
    }
    let app = App::build(Config::from_vars(&vars).unwrap(), Clock::system())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.serve_until(listener, admin, async {
        let _ = stopped.await;
    }));
    Served {
        addr,
        _stop: stop,
        _dir: dir,
    }
}

/// Sends `request` on a new connection and reads the answer until the server closes (a reset after
/// an unread body ends it too: what arrived before counts).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 5 s");
    String::from_utf8_lossy(&answer).into_owned()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

/// Reads until the server closes `stream`; how long that took.
async fn closed_after(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut sink))
        .await
        .expect("the server closed the connection in time")
        .ok();
    started.elapsed()
}

#[tokio::test]
async fn a_slow_request_head_is_disconnected_while_others_are_served() {
    let core = serve(&[("HEART_HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let mut slow = TcpStream::connect(core.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    // Meanwhile another client is served at once.
    let started = Instant::now();
    let answer = exchange(core.addr, HEALTHZ).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() < Duration::from_millis(500));
    let waited = closed_after(&mut slow, Duration::from_secs(5)).await;
    assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
}

#[tokio::test]
async fn a_slow_json_body_is_global_004_and_disconnected() {
    let core = serve(&[("HEART_BODY_READ_TIMEOUT_SECS", "1")]).await;
    let mut slow = TcpStream::connect(core.addr).await.unwrap();
    slow.write_all(
        b"POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"email\":",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("GLOBAL_004"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_json_body_over_the_limit_is_global_008_without_being_read_whole() {
    let core = serve(&[("HEART_MAX_JSON_BODY_BYTES", "1024")]).await;
    let body = format!("{{\"email\":\"{}\"}}", "a".repeat(4096));
    let request = format!(
        "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(core.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("GLOBAL_008"), "{answer}");
}

#[tokio::test]
async fn open_connections_are_capped_and_a_freed_slot_is_used() {
    let core = serve(&[("HEART_MAX_CONNECTIONS", "2")]).await;
    // Two connections that send nothing hold both slots (until the head time limit, 10 s).
    let first = TcpStream::connect(core.addr).await.unwrap();
    let _second = TcpStream::connect(core.addr).await.unwrap();
    let mut third = TcpStream::connect(core.addr).await.unwrap(); // accepted by the kernel: the backlog
    third.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond the cap of 2 connections");
    drop(first);
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), third.read_to_end(&mut answer))
        .await
        .expect("served once a slot was freed");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}
