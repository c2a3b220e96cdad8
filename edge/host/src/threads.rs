//! Serving on one thread per core, each with a runtime of its own.
//!
//! Every thread listens on the same address (`SO_REUSEPORT`: the kernel spreads new connections
//! over the threads) and runs its connections' requests from the first byte to the answer: the
//! instance, its Redis call and its hop to the core included, over Redis and core connections of
//! its own ([`EdgeHost::for_another_thread`]). On a work-stealing runtime a request's steps
//! wake each other across threads; measured on the 2-core machine of `BENCHMARKS.md`, those
//! wake-ups were about a third of a forwarded request's overhead at one connection.
//!
//! The threads share the instance pool and its limits (instances, uploads, connections), the
//! in-process store and the engine. Each thread takes a connection slot before it accepts, so at
//! the connection cap up to `threads − 1` slots may wait in idle accepts: the cap is never passed,
//! and may be reached that many connections early. A guest's CPU time holds its thread, as it holds
//! a worker of a work-stealing runtime; the per-request CPU limit (epoch interruption) bounds it.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use anyhow::Context as _;
use tokio::net::TcpSocket;
use tokio::sync::watch;

use crate::EdgeHost;

/// Pending connections per listening socket.
const BACKLOG: u32 = 1024;

/// The serving threads started by [`serve_on_threads`].
#[derive(Debug)]
pub struct Threads {
    /// The address they listen on (the port chosen, when `0` was asked for).
    pub address: SocketAddr,
    handles: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Threads {
    /// Waits for every thread to finish (after the shutdown signal, each once its requests in
    /// flight have had their time limit); the first failure, if any.
    pub fn join(self) -> anyhow::Result<()> {
        let mut result = Ok(());
        for handle in self.handles {
            let ended = match handle.join() {
                Ok(ended) => ended,
                Err(_) => Err(anyhow::anyhow!("a serving thread panicked")),
            };
            if let (Ok(()), Err(e)) = (&result, ended) {
                result = Err(e);
            }
        }
        result
    }
}

/// Serves `host` on `threads` threads (at least one) listening on `listen`, until `shutdown`
/// holds `true`. Binds before it returns, so a bad address fails here.
pub fn serve_on_threads(
    host: &EdgeHost,
    listen: SocketAddr,
    threads: usize,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Threads> {
    let threads = threads.max(1);
    let mut sockets = Vec::with_capacity(threads);
    let mut address = listen;
    for _ in 0..threads {
        // Port 0: the first socket picks the port, the others join it.
        let socket = bind(address).with_context(|| format!("binding {address}"))?;
        address = socket.local_addr()?;
        sockets.push(socket);
    }
    let mut handles = Vec::with_capacity(threads);
    // Each thread says when its socket listens (or why it could not): this returns only then, so
    // a client that connects right after is never refused.
    let (listening, listen_results) = std::sync::mpsc::channel::<std::io::Result<()>>();
    for (i, socket) in sockets.into_iter().enumerate() {
        let listening = listening.clone();
        let host = if i == 0 {
            host.clone()
        } else {
            host.for_another_thread()
        };
        let mut shutdown = shutdown.clone();
        let handle = std::thread::Builder::new()
            .name(format!("heart-edge-{i}"))
            .spawn(move || -> anyhow::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting a serving thread's runtime")?;
                runtime.block_on(async move {
                    let listener = match socket.listen(BACKLOG) {
                        Ok(listener) => {
                            let _ = listening.send(Ok(()));
                            listener
                        }
                        Err(e) => {
                            let _ =
                                listening.send(Err(std::io::Error::new(e.kind(), e.to_string())));
                            return Err(e);
                        }
                    };
                    drop(listening);
                    let stop = async move {
                        // A dropped sender also stops the thread.
                        let _ = shutdown.wait_for(|stop| *stop).await;
                    };
                    host.serve(listener, stop).await
                })?;
                Ok(())
            })
            .context("starting a serving thread")?;
        handles.push(handle);
    }
    drop(listening);
    for _ in 0..threads {
        match listen_results.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e).with_context(|| format!("listening on {address}")),
            Err(_) => anyhow::bail!("a serving thread ended before it listened"),
        }
    }
    Ok(Threads { address, handles })
}

/// A socket bound to `address` that other sockets may bind too (`SO_REUSEPORT`).
fn bind(address: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.set_nodelay(true)?;
    socket.bind(address)?;
    Ok(socket)
}

/// The threads to serve on: `HEART_EDGE_THREADS` when set (at least 1), else one per core
/// available to the process (its CPU quota included).
pub fn thread_count(var: Option<String>) -> anyhow::Result<usize> {
    Ok(
        match crate::server::read_number("HEART_EDGE_THREADS", var)? {
            Some(n) => usize::try_from(n.max(1)).unwrap_or(usize::MAX),
            None => std::thread::available_parallelism().map_or(1, usize::from),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_count_is_read_or_one_per_core() {
        assert_eq!(thread_count(Some("3".into())).unwrap(), 3);
        assert_eq!(thread_count(Some("0".into())).unwrap(), 1);
        assert!(thread_count(Some("many".into())).is_err());
        assert!(thread_count(None).unwrap() >= 1);
    }

    #[test]
    fn sockets_share_one_port() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = first.local_addr().unwrap();
        let second = bind(address).unwrap();
        assert_eq!(second.local_addr().unwrap(), address);
    }
}
