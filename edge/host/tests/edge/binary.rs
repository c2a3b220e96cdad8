//! `heart-edge-host`, the binary as an operator runs it: its JSON log on stderr (one flat access
//! line per request) and its admin port (`GET /metrics`).

use std::io::{BufRead as _, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::helpers::compile_cache_dir;

/// The binary on free ports with one serving thread; killed when dropped.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    edge: String,
    admin: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Stops it as Kubernetes does (`SIGTERM`): it must exit by itself, and succeed.
    fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("heart-edge-host did not exit within 30 s of SIGTERM");
    }

    fn start() -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_heart-edge-host"))
            .env("HEART_EDGE_LISTEN", "127.0.0.1:0")
            .env("HEART_EDGE_ADMIN_LISTEN", "127.0.0.1:0")
            .env("HEART_EDGE_THREADS", "1")
            .env("HEART_LOG_FORMAT", "json")
            .env("HEART_EDGE_VAR_CORE_URL", "http://127.0.0.1:9")
            .env("HEART_EDGE_CACHE_DIR", compile_cache_dir())
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut running = Running {
            child,
            lines,
            edge: String::new(),
            admin: String::new(),
        };
        running.admin = running.wait_for("admin listening: GET /metrics")["address"]
            .as_str()
            .unwrap()
            .to_owned();
        running.edge = running.wait_for("edge listening")["address"]
            .as_str()
            .unwrap()
            .to_owned();
        running
    }

    /// The next log line whose message is `message` (compiling the component may take a while).
    /// Every line of the host's log must be JSON; the component's own stderr lines (`heart-edge:
    /// …`, not the host's log) are passed over.
    fn wait_for(&mut self, message: &str) -> serde_json::Value {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => panic!("no {message:?} line from heart-edge-host: {e}"),
            };
            if line.starts_with("heart-edge:") {
                continue;
            }
            let parsed: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if parsed["message"] == message {
                return parsed;
            }
        }
    }
}

/// `GET path` on `address`: (status, body).
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned();
    (status, body)
}

#[test]
fn the_binary_logs_flat_json_access_lines_and_serves_its_metrics() {
    let mut host = Running::start();
    let (status, _) = get(&host.edge, "/healthz");
    assert_eq!(status, 200);

    // The request's access line: its parts are top-level keys.
    let line = host.wait_for("access");
    assert_eq!(line["target"], "heart_edge::access");
    assert_eq!(line["route"], "/healthz");
    assert_eq!(line["status"], 200);
    assert_eq!(line["outcome"], "edge");
    assert!(line["latency_ms"].as_f64().is_some(), "{line}");
    assert_eq!(
        line["request_id"].as_str().map(str::len),
        Some(32),
        "{line}"
    );

    // The admin port counts it.
    let (status, metrics) = get(&host.admin, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l == "heart_edge_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("heart_edge_request_duration_seconds"),
        "{metrics}"
    );
    // Nothing else is served there.
    assert_eq!(get(&host.admin, "/").0, 404);
    assert_eq!(get(&host.admin, "/metrics/x").0, 404);

    // And it shuts down cleanly when told to.
    assert!(host.terminate().success());
}

/// Idle clients cannot hold the admin port: with all of its connections taken by sockets that
/// send nothing, a scrape waits, and is answered once the header timeout has cut them.
#[test]
fn idle_clients_hold_the_admin_port_no_longer_than_its_header_timeout() {
    use heart_edge_host::admin::{HEADER_TIMEOUT, MAX_CONNECTIONS};
    let host = Running::start();
    let idle: Vec<_> = (0..MAX_CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(&host.admin).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, _) = get(&host.admin, "/metrics");
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited >= HEADER_TIMEOUT - Duration::from_secs(1),
        "answered after {waited:?} although every connection was taken"
    );
    assert!(
        waited < HEADER_TIMEOUT + Duration::from_secs(15),
        "{waited:?}"
    );
    drop(idle);
}
