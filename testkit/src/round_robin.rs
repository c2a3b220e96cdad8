//! A round-robin TCP proxy: the "load balancer" in front of several replicas in the replica tests
//! (two edges behind one address, two cores behind another).
//!
//! It balances **connections**, not requests: each accepted connection goes whole to the next
//! backend in turn, as an L4 balancer (an NLB, a Kubernetes Service) does. A client that keeps one
//! connection alive therefore stays on one replica; the replica tests open a new connection per
//! request (the stack tests' client always does), so consecutive requests alternate. Being blind
//! to HTTP it can carry anything, and it cannot hide a replica's answer behind its own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

/// A round-robin proxy on a loopback port, until dropped.
#[derive(Debug)]
pub struct RoundRobin {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Shared {
    backends: Mutex<Vec<SocketAddr>>,
    next: AtomicUsize,
    /// Connections handed to each backend, by its position in `backends`.
    served: Mutex<Vec<usize>>,
}

impl RoundRobin {
    /// A proxy over `backends` (may be empty, then set later with [`RoundRobin::set_backends`]:
    /// a connection that arrives while there are none is closed).
    pub async fn start(backends: Vec<SocketAddr>) -> RoundRobin {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the round-robin proxy");
        RoundRobin::serve(listener, backends)
    }

    /// A proxy over `backends` on `listen` (`heart-rr`); an error if it cannot be bound.
    pub async fn start_on(
        listen: SocketAddr,
        backends: Vec<SocketAddr>,
    ) -> std::io::Result<RoundRobin> {
        Ok(RoundRobin::serve(
            TcpListener::bind(listen).await?,
            backends,
        ))
    }

    fn serve(listener: TcpListener, backends: Vec<SocketAddr>) -> RoundRobin {
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared::default());
        let proxy_shared = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let Some(backend) = proxy_shared.pick() else {
                    continue;
                };
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(backend).await {
                        let _ = server.set_nodelay(true);
                        let _ = client.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        let proxy = RoundRobin {
            addr,
            shared,
            accept,
        };
        proxy.set_backends(backends);
        proxy
    }

    /// Replaces the backends (their counts start again at zero).
    pub fn set_backends(&self, backends: Vec<SocketAddr>) {
        let count = backends.len();
        *lock(&self.shared.backends) = backends;
        *lock(&self.shared.served) = vec![0; count];
    }

    /// How many connections each backend was given, in the order of the backends.
    pub fn served(&self) -> Vec<usize> {
        lock(&self.shared.served).clone()
    }
}

impl Shared {
    fn pick(&self) -> Option<SocketAddr> {
        let backends = lock(&self.backends);
        if backends.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % backends.len();
        if let Some(count) = lock(&self.served).get_mut(i) {
            *count += 1;
        }
        Some(backends[i])
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A backend that answers every connection with its own name.
    async fn named_backend(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(name.as_bytes()).await;
            }
        });
        addr
    }

    async fn ask(addr: SocketAddr) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn each_new_connection_goes_to_the_next_backend() {
        let (a, b) = (named_backend("a").await, named_backend("b").await);
        let proxy = RoundRobin::start(vec![a, b]).await;
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(ask(proxy.addr).await);
        }
        assert_eq!(answers, ["a", "b", "a", "b"]);
        assert_eq!(proxy.served(), [2, 2]);
    }
}
