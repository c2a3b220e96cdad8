//! [`RedisStore`]: real Redis over one multiplexed connection, behind a [`Breaker`].
//!
//! Every call is bounded ([`RedisTimeouts`]: connecting 250 ms, a whole call 500 ms). A call
//! that fails the way an unreachable Redis fails (refused, reset, dropped, no answer in time)
//! opens the breaker; from then on every call — and every call still in flight — fails at once,
//! so the component forwards without the cache in microseconds instead of a timeout per request.
//! The connection is dropped (a stalled or black-holed one never recovers by itself) and a
//! background probe opens a fresh connection every 250 ms and sends it ten `PING`s; the first
//! that answers all ten becomes the connection and closes the breaker, without a restart (a
//! healthy Redis answers them in about a millisecond; a path losing 30 % of its packets answers
//! all ten once in a thousand probes, where three got through one probe in eight). A
//! Redis that fails again within 10 s of coming back (a lossy path that let a probe through) is
//! probed less often each time — 0.5 s, 1 s, 2 s, at most 4 s — so it costs requests one call
//! timeout per probe interval at worst, not one each.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, RedisError};
use async_trait::async_trait;

use super::breaker::Breaker;
use super::{EdgeStore, StoreArg, StoreError, StoreValue};

/// How long the edge waits for Redis, and how often it looks for it while it is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// Opening a connection (TCP, and TLS for `rediss://`). Same-VPC Redis connects in about a
    /// millisecond; 250 ms is a broken route or a host that is gone.
    pub connect: Duration,
    /// One call in all: connecting if there is no connection, the command and its answer. The
    /// gate script answers in well under a millisecond on Redis; 500 ms means Redis (or the path
    /// to it) is not answering, and it is also the most a request loses when Redis stops
    /// answering (the first call to time out opens the breaker for all the others).
    pub call: Duration,
    /// How often the background probe (a fresh connection and `PING`, within `call`) runs while
    /// the breaker is open: Redis is used again at most this long after it is back.
    pub probe_every: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        RedisTimeouts {
            connect: Duration::from_millis(250),
            call: Duration::from_millis(500),
            probe_every: Duration::from_millis(250),
        }
    }
}

/// Real Redis. `execute` goes to Redis as is, so the gate script runs there atomically in one
/// round trip. Cheap to clone; clones share the connection and the breaker.
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    timeouts: RedisTimeouts,
    /// The connection calls share; `None` until the first call, and after the breaker opened
    /// until a probe has a new one.
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    breaker: Breaker,
    /// When the breaker last closed, and how many times in a row it opened again soon after.
    flaps: Mutex<(Option<Instant>, u32)>,
}

/// `PING`s a fresh connection must answer in a row before Redis counts as back: enough that a
/// lossy path seldom lets a probe through (each closing costs the requests in flight a call
/// timeout), few enough to take a millisecond on a healthy one.
const CONFIRMING_PINGS: usize = 10;
/// Opening again this soon after closing is a flap: the next probes come less often.
const FLAP_WINDOW: Duration = Duration::from_secs(10);
/// At most `probe_every` × 2^this between probes (250 ms → 4 s).
const MAX_BACKOFF_DOUBLINGS: u32 = 4;

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeouts", &self.shared.timeouts)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

fn redis_error(e: RedisError) -> StoreError {
    StoreError(e.to_string())
}

fn down() -> StoreError {
    StoreError("Redis is unreachable (failing fast until a probe answers)".into())
}

/// Whether `e` says Redis (or the way to it) is gone, rather than that it refused a command.
fn unreachable(e: &RedisError) -> bool {
    e.is_io_error() || e.is_unrecoverable_error()
}

async fn connect(
    client: &Client,
    timeouts: RedisTimeouts,
) -> Result<MultiplexedConnection, RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(timeouts.connect)
        .set_response_timeout(timeouts.call);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

impl RedisStore {
    /// A store for `url` (`redis://` or `rediss://`); connects on the first call.
    pub fn new(url: &str, timeouts: RedisTimeouts) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(redis_error)?;
        Ok(RedisStore {
            shared: Arc::new(Shared {
                client,
                timeouts,
                connection: tokio::sync::Mutex::new(None),
                breaker: Breaker::new(),
                flaps: Mutex::new((None, 0)),
            }),
        })
    }

    /// Whether calls go to Redis (`false` while the breaker is open).
    pub fn is_up(&self) -> bool {
        self.shared.breaker.is_up()
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut current = self.shared.connection.lock().await;
        if let Some(connection) = current.as_ref() {
            return Ok(connection.clone());
        }
        let connection = connect(&self.shared.client, self.shared.timeouts).await?;
        *current = Some(connection.clone());
        Ok(connection)
    }

    async fn query<T: ::redis::FromRedisValue>(&self, cmd: &::redis::Cmd) -> Result<T, StoreError> {
        let breaker = &self.shared.breaker;
        if !breaker.is_up() {
            return Err(down());
        }
        let opened = breaker.opened();
        let call = async {
            let mut connection = self.connection().await?;
            cmd.query_async::<T>(&mut connection).await
        };
        let limit = self.shared.timeouts.call;
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(limit, call) => outcome,
            // Another call found Redis gone: this one does not wait for its own timeout.
            () = opened => return Err(down()),
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if unreachable(&e) {
                    self.trip(&e.to_string());
                }
                Err(redis_error(e))
            }
            Err(_) => {
                let why = format!("no answer within {limit:?}");
                self.trip(&why);
                Err(StoreError(format!("Redis: {why}")))
            }
        }
    }

    fn trip(&self, why: &str) {
        if self.shared.breaker.trip(why) {
            tokio::spawn(probe(Arc::downgrade(&self.shared)));
        }
    }
}

impl Shared {
    /// How long to wait between probes of this outage: `probe_every`, doubled for every time in a
    /// row Redis failed again soon after a probe let it back.
    fn probe_interval(&self) -> Duration {
        let mut flaps = self
            .flaps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (closed_at, doublings) = &mut *flaps;
        *doublings = if closed_at.is_some_and(|at| at.elapsed() < FLAP_WINDOW) {
            (*doublings + 1).min(MAX_BACKOFF_DOUBLINGS)
        } else {
            0
        };
        self.timeouts.probe_every * 2u32.pow(*doublings)
    }

    fn closed(&self) {
        self.flaps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = Some(Instant::now());
        self.breaker.close();
    }
}

/// While the breaker is open: drops the connection, then every probe interval opens a new one
/// and sends it [`CONFIRMING_PINGS`] `PING`s; the first that answers them all in time becomes the
/// connection and closes the breaker. Ends when it closed the breaker or the store is gone.
async fn probe(shared: Weak<Shared>) {
    let every = match shared.upgrade() {
        Some(shared) => {
            shared.connection.lock().await.take();
            shared.probe_interval()
        }
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let attempt = async {
            let mut connection = connect(&shared.client, shared.timeouts).await?;
            for _ in 0..CONFIRMING_PINGS {
                ::redis::cmd("PING")
                    .query_async::<()>(&mut connection)
                    .await?;
            }
            Ok::<_, RedisError>(connection)
        };
        match tokio::time::timeout(shared.timeouts.call, attempt).await {
            Ok(Ok(connection)) => {
                *shared.connection.lock().await = Some(connection);
                shared.closed();
                return;
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "edge Redis still down"),
            Err(_) => tracing::debug!("edge Redis still not answering"),
        }
    }
}

fn from_redis(value: ::redis::Value) -> Result<StoreValue, StoreError> {
    use ::redis::Value;
    Ok(match value {
        Value::Nil => StoreValue::Nil,
        Value::Int(n) => StoreValue::Int(n),
        Value::BulkString(b) => StoreValue::Bytes(b),
        Value::SimpleString(s) => StoreValue::Status(s),
        Value::Okay => StoreValue::Status("OK".into()),
        Value::Boolean(b) => StoreValue::Int(i64::from(b)),
        other => {
            return Err(StoreError(format!(
                "unsupported nested Redis answer {other:?}"
            )))
        }
    })
}

#[async_trait]
impl EdgeStore for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query(::redis::cmd("GET").arg(key)).await
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(key).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("EX").arg(ttl.as_secs().max(1));
        }
        self.query(&cmd).await
    }

    async fn incr(&self, key: &str) -> Result<i64, StoreError> {
        self.query(::redis::cmd("INCR").arg(key)).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.query(::redis::cmd("EXPIRE").arg(key).arg(ttl.as_secs().max(1)))
            .await
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        self.query(::redis::cmd("EXISTS").arg(key)).await
    }

    async fn del(&self, keys: &[String]) -> Result<u32, StoreError> {
        self.query(::redis::cmd("DEL").arg(keys)).await
    }

    async fn execute(
        &self,
        command: &str,
        args: &[StoreArg],
    ) -> Result<Vec<StoreValue>, StoreError> {
        let mut cmd = ::redis::cmd(command);
        for arg in args {
            match arg {
                StoreArg::Int(n) => cmd.arg(*n),
                StoreArg::Bytes(b) => cmd.arg(b.as_slice()),
            };
        }
        // Like Spin: an array answer is flattened one level, anything else is one value.
        match self.query::<::redis::Value>(&cmd).await? {
            ::redis::Value::Array(values) => values.into_iter().map(from_redis).collect(),
            value => Ok(vec![from_redis(value)?]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::net::TcpListener;

    fn quick() -> RedisTimeouts {
        RedisTimeouts {
            connect: Duration::from_millis(100),
            call: Duration::from_millis(200),
            probe_every: Duration::from_millis(50),
        }
    }

    /// A "Redis" that accepts connections and never answers.
    async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (format!("redis://{addr}"), task)
    }

    #[tokio::test]
    async fn a_hanging_redis_costs_one_timeout_then_calls_fail_at_once() {
        let (url, _server) = black_hole().await;
        let store = RedisStore::new(&url, quick()).unwrap();
        let started = Instant::now();
        let (a, b, c) = tokio::join!(store.get("a"), store.get("b"), store.incr("c"));
        assert!(a.is_err() && b.is_err() && c.is_err());
        let first = started.elapsed();
        assert!(
            first < Duration::from_millis(400),
            "calls in flight end with the first timeout: {first:?}"
        );
        assert!(!store.is_up());
        for _ in 0..100 {
            let started = Instant::now();
            assert!(store.get("k").await.is_err());
            assert!(
                started.elapsed() < Duration::from_millis(5),
                "an open breaker answers at once: {:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn a_refused_connection_opens_the_breaker_and_the_probe_keeps_it_open() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let store = RedisStore::new(&format!("redis://{addr}"), quick()).unwrap();
        assert!(store.get("k").await.is_err());
        assert!(!store.is_up());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!store.is_up(), "nothing listens: every probe fails");
    }

    #[tokio::test]
    async fn a_redis_that_fails_again_soon_after_coming_back_is_probed_less_often() {
        let store = RedisStore::new("redis://127.0.0.1:1", RedisTimeouts::default()).unwrap();
        let shared = &store.shared;
        let every = RedisTimeouts::default().probe_every;
        assert_eq!(shared.probe_interval(), every, "a first outage");
        let mut seen = Vec::new();
        for _ in 0..6 {
            shared.closed();
            seen.push(shared.probe_interval());
        }
        assert_eq!(
            seen,
            [2, 4, 8, 16, 16, 16].map(|n| every * n),
            "doubling per flap, at most 16 times"
        );
        *shared.flaps.lock().unwrap() = (Some(Instant::now() - FLAP_WINDOW), 4);
        assert_eq!(
            shared.probe_interval(),
            every,
            "up long enough: back to the start"
        );
    }

    #[tokio::test]
    async fn an_invalid_address_is_refused_up_front() {
        assert!(RedisStore::new("not a url", RedisTimeouts::default()).is_err());
    }
}
