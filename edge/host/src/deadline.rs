//! The time limits of one request's instance.
//!
//! Until the component has answered the head (status and headers), the request time limit holds:
//! past it the client gets `GLOBAL_503`. After the head, the answer's body may stream for longer
//! (a data export of a large account takes minutes) as long as it moves: each chunk the client
//! takes gives the stream another `idle` (the request time limit), up to `max` from the start
//! (the stream time limit). A client that stops reading, or a core that stops sending, ends the
//! stream `idle` after the last chunk; the instance and its permit are freed then.
//!
//! A stream past the request time limit holds its instance for long, so at most
//! `max_long_streams` may (a slot each, taken without waiting when the limit passes); a stream
//! that finds none is cut there, and the instances stay free for the API.
//!
//! Both the wall clock (the task running the instance) and the CPU (the epoch deadline of the
//! instance's store) follow the same [`Deadline`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// What the task and the epoch callback say when the deadline has passed; the host maps a failure
/// whose text holds "time limit" to `GLOBAL_503`.
pub(crate) const EXPIRED: &str = "the component ran past the request time limit";

/// The deadline of one request; clones share it.
#[derive(Clone, Debug)]
pub(crate) struct Deadline {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    started: Instant,
    /// Until the head is answered; and after it, without a chunk taken.
    idle: Duration,
    /// From the start, however the body moves.
    max: Duration,
    answered: AtomicBool,
    /// The instance ended without finishing the body (killed at the deadline, or trapped).
    cut: AtomicBool,
    /// Milliseconds from `started` to the last chunk taken (or the head).
    last_progress_ms: AtomicU64,
    /// The slots of streams past the request time limit, and this one's once taken.
    long_streams: Arc<Semaphore>,
    slot: Mutex<Slot>,
}

#[derive(Debug)]
enum Slot {
    /// Not past the request time limit yet.
    NotNeeded,
    Held(#[allow(dead_code)] OwnedSemaphorePermit),
    /// None was free: the stream ends at the request time limit.
    Refused,
}

impl Deadline {
    /// A deadline starting now: `idle` for the head and between chunks, `max` in all (at least
    /// `idle`), past `idle` only with a slot of `long_streams`.
    pub(crate) fn new(idle: Duration, max: Duration, long_streams: Arc<Semaphore>) -> Deadline {
        Deadline {
            shared: Arc::new(Shared {
                started: Instant::now(),
                idle,
                max: max.max(idle),
                answered: AtomicBool::new(false),
                cut: AtomicBool::new(false),
                last_progress_ms: AtomicU64::new(0),
                long_streams,
                slot: Mutex::new(Slot::NotNeeded),
            }),
        }
    }

    /// The head has been answered: from now on the body's progress extends the deadline.
    pub(crate) fn answered(&self) {
        self.progressed();
        self.shared.answered.store(true, Ordering::Release);
    }

    /// Whether the head has been answered (so a failure now cuts a streamed body).
    pub(crate) fn is_answered(&self) -> bool {
        self.shared.answered.load(Ordering::Acquire)
    }

    /// The instance ends without having finished the body: call before its store is dropped.
    /// wasmtime-wasi-http ends a body whose instance is dropped as if it were complete; with this
    /// the client sees it break off instead, never a truncated answer that looks whole.
    pub(crate) fn cut(&self) {
        self.shared.cut.store(true, Ordering::Release);
    }

    fn progressed(&self) {
        let elapsed = u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.shared
            .last_progress_ms
            .fetch_max(elapsed, Ordering::AcqRel);
    }

    /// When the request's instance must end.
    pub(crate) fn expires_at(&self) -> Instant {
        let s = &self.shared;
        let request_limit = s.started + s.idle;
        // Before the head, and past the request limit without a long-stream slot: the limit.
        if !s.answered.load(Ordering::Acquire)
            || (Instant::now() >= request_limit && !self.holds_long_stream_slot())
        {
            return request_limit;
        }
        let last = Duration::from_millis(s.last_progress_ms.load(Ordering::Acquire));
        (s.started + last + s.idle).min(s.started + s.max)
    }

    /// Whether this stream has a long-stream slot, taking one (without waiting) the first time.
    fn holds_long_stream_slot(&self) -> bool {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Slot::NotNeeded = *slot {
            *slot = match self.shared.long_streams.clone().try_acquire_owned() {
                Ok(permit) => Slot::Held(permit),
                Err(_) => {
                    tracing::warn!(
                        "no long-stream slot free: the answer ends at the request time limit"
                    );
                    Slot::Refused
                }
            };
        }
        matches!(*slot, Slot::Held(_))
    }

    /// What is left before [`Deadline::expires_at`], zero once it has passed.
    pub(crate) fn remaining(&self) -> Duration {
        self.expires_at().saturating_duration_since(Instant::now())
    }

    /// Runs `work` until it ends or the deadline passes, whichever is first (`Err(EXPIRED)`).
    pub(crate) async fn run<F: Future>(&self, work: F) -> Result<F::Output, &'static str> {
        tokio::pin!(work);
        loop {
            let at = self.expires_at();
            tokio::select! {
                output = &mut work => return Ok(output),
                () = tokio::time::sleep_until(at) => {
                    // The body may have moved while this slept: only a deadline still passed
                    // ends it.
                    if self.remaining().is_zero() {
                        return Err(EXPIRED);
                    }
                }
            }
        }
    }

    /// `body`, marking progress each time the client takes a chunk of it.
    pub(crate) fn track(&self, body: HyperOutgoingBody) -> HyperOutgoingBody {
        use http_body_util::BodyExt as _;
        Tracked {
            inner: body,
            deadline: self.clone(),
        }
        .boxed_unsync()
    }
}

/// A body whose chunks, as they are taken, extend its [`Deadline`].
struct Tracked {
    inner: HyperOutgoingBody,
    deadline: Deadline,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) => self.deadline.progressed(),
            Poll::Ready(None) if self.deadline.shared.cut.load(Ordering::Acquire) => {
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpProtocolError)));
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn slots(n: usize) -> Arc<Semaphore> {
        Arc::new(Semaphore::new(n))
    }

    /// A stream that answers at once and moves every 50 ms for `for_ms`.
    async fn stream(deadline: Deadline, for_ms: u32) {
        deadline.answered();
        for _ in 0..for_ms / 50 {
            tokio::time::sleep(50 * MS).await;
            deadline.progressed();
        }
    }

    #[tokio::test]
    async fn streams_past_the_request_time_limit_need_a_slot() {
        let long_streams = slots(1);
        let started = Instant::now();
        let (first, second) = {
            let first = Deadline::new(300 * MS, 10_000 * MS, long_streams.clone());
            let second = Deadline::new(300 * MS, 10_000 * MS, long_streams.clone());
            tokio::join!(
                first.run(stream(first.clone(), 800)),
                second.run(stream(second.clone(), 800)),
            )
        };
        // One got the slot and finished; the other was cut at the request time limit.
        let mut outcomes = [first.is_ok(), second.is_ok()];
        outcomes.sort_unstable();
        assert_eq!(outcomes, [false, true]);
        assert!(started.elapsed() >= 800 * MS);
        // The slot is free again once its stream is done.
        assert_eq!(long_streams.available_permits(), 1);
        let third = Deadline::new(300 * MS, 10_000 * MS, long_streams);
        assert_eq!(third.run(stream(third.clone(), 500)).await, Ok(()));
    }

    #[tokio::test]
    async fn the_head_has_the_request_time_limit() {
        let deadline = Deadline::new(200 * MS, 5000 * MS, slots(1));
        let slow = deadline.run(tokio::time::sleep(400 * MS)).await;
        assert_eq!(slow, Err(EXPIRED));
        let deadline = Deadline::new(2000 * MS, 5000 * MS, slots(1));
        let quick = deadline.run(tokio::time::sleep(50 * MS)).await;
        assert_eq!(quick, Ok(()));
    }

    #[tokio::test]
    async fn a_moving_body_goes_on_until_the_stream_limit() {
        let deadline = Deadline::new(300 * MS, 900 * MS, slots(1));
        let mover = deadline.clone();
        let streaming = async move {
            mover.answered();
            // A chunk every 100 ms: never idle for 300 ms, past 900 ms in all.
            for _ in 0..50 {
                tokio::time::sleep(100 * MS).await;
                mover.progressed();
            }
        };
        let started = Instant::now();
        assert_eq!(deadline.run(streaming).await, Err(EXPIRED));
        let took = started.elapsed();
        assert!(took >= 900 * MS && took < 3000 * MS, "{took:?}");
    }

    #[tokio::test]
    async fn a_stalled_body_ends_idle_after_its_last_chunk() {
        let deadline = Deadline::new(300 * MS, 10_000 * MS, slots(1));
        let mover = deadline.clone();
        let stalls = async move {
            mover.answered();
            tokio::time::sleep(200 * MS).await;
            mover.progressed();
            tokio::time::sleep(20_000 * MS).await;
        };
        let started = Instant::now();
        assert_eq!(deadline.run(stalls).await, Err(EXPIRED));
        let took = started.elapsed();
        // The chunk at 200 ms gave it until 500 ms; the stream limit is far.
        assert!(took >= 500 * MS && took < 5000 * MS, "{took:?}");
    }
}
