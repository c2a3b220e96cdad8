//! A TCP proxy in front of a real backend (MySQL, Redis, S3, SMTP) that a test turns bad:
//! cut (connections dropped, new ones refused, as when the server dies), slow (every chunk
//! delayed), stalled (connections accepted, nothing answered, as a hung server or a black-holed
//! route), lossy (a fraction of chunks lost — the connection then hangs, as TCP does when the
//! retransmits never arrive) or resetting (a fraction of chunks reset their connection).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to the traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Forwards everything.
    Pass,
    /// Delays every chunk, both ways, by this much.
    Latency(Duration),
    /// Accepts connections but forwards nothing until the mode changes.
    Stall,
    /// Loses this fraction of chunks; a connection that lost one forwards nothing more.
    Drop(f64),
    /// Resets the connection on this fraction of chunks.
    Reset(f64),
}

/// The proxy: listens on [`Proxy::addr`] and forwards to its upstream in the current [`Mode`].
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect instead of the backend.
    pub addr: SocketAddr,
    upstream: String,
    mode: Arc<watch::Sender<Mode>>,
    accept: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    chunks: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            upstream: upstream.to_owned(),
            mode: Arc::new(watch::Sender::new(Mode::Pass)),
            accept: Mutex::new(None),
            connections: Arc::default(),
            chunks: Arc::default(),
        };
        proxy.listen(listener);
        proxy
    }

    /// Sets how the proxy treats the traffic from now on (connections already open included).
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    fn listen(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let connections = self.connections.clone();
        let (mode, chunks) = (self.mode.clone(), self.chunks.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                let (mode, chunks) = (mode.clone(), chunks.clone());
                let connection = tokio::spawn(async move {
                    // Stalled: the connection is accepted, then nothing happens.
                    let _ = mode.subscribe().wait_for(|m| *m != Mode::Stall).await;
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    let up = pump(in_read, out_write, mode.clone(), chunks.clone());
                    let down = pump(out_read, in_write, mode, chunks);
                    // Either side ending (or resetting) ends the connection.
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                    }
                });
                connections.lock().unwrap().push(connection);
            }
        });
        *self.accept.lock().unwrap() = Some(task);
    }

    /// Drops every connection and stops listening: connecting is refused.
    pub async fn cut(&self) {
        let accept = self.accept.lock().unwrap().take();
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        let connections: Vec<_> = self.connections.lock().unwrap().drain(..).collect();
        for connection in connections {
            connection.abort();
            let _ = connection.await;
        }
    }

    /// Listens again on the same address, forwarding everything.
    pub async fn restore(&self) {
        self.set(Mode::Pass);
        if self.accept.lock().unwrap().is_some() {
            return;
        }
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.listen(listener);
    }
}

/// Whether the `n`th chunk falls in `fraction` (spread evenly: 0.25 → chunks 3, 7, 11…).
fn hit(n: u64, fraction: f64) -> bool {
    let n = n as f64;
    ((n + 1.0) * fraction).floor() > (n * fraction).floor()
}

/// Copies `from` to `to` chunk by chunk as the mode says.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mode: Arc<watch::Sender<Mode>>,
    chunks: Arc<AtomicU64>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    let mut black_holed = false;
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let current = *mode.borrow();
        let number = chunks.fetch_add(1, Ordering::Relaxed);
        match current {
            Mode::Pass => {}
            Mode::Latency(delay) => tokio::time::sleep(delay).await,
            Mode::Stall => {
                let _ = mode.subscribe().wait_for(|m| *m != Mode::Stall).await;
            }
            Mode::Drop(fraction) => black_holed |= hit(number, fraction),
            Mode::Reset(fraction) if hit(number, fraction) => {
                // SO_LINGER 0 is not reachable on a split stream; ending both halves at once is
                // what the client sees of a reset: its reads fail or end mid-answer.
                return;
            }
            Mode::Reset(_) => {}
        }
        if black_holed {
            // Lost for good: hang on to the connection, forward nothing more, until it is closed.
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// `scheme://[user@]host:port[/rest]` → (`host:port`, the URL with `addr` instead).
pub fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (user, host_port) = authority
        .rsplit_once('@')
        .map_or(("", authority), |(u, h)| (u, h));
    let user = if user.is_empty() {
        String::new()
    } else {
        format!("{user}@")
    };
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    (
        host_port.to_owned(),
        format!("{scheme}://{user}{addr}{path}"),
    )
}

/// A proxy to the server `url` names, and `url` rewritten to go through it.
pub async fn proxy_to(url: &str) -> (Proxy, String) {
    let (upstream, _) = through(url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(&upstream).await;
    let (_, via) = through(url, proxy.addr);
    (proxy, via)
}

#[test]
fn fractions_hit_evenly() {
    let hits = (0..100).filter(|&n| hit(n, 0.25)).count();
    assert_eq!(hits, 25);
    assert!(!(0..100).any(|n| hit(n, 0.0)));
    assert!((0..100).all(|n| hit(n, 1.0)));
}
