//! The password hashing threads: a fixed few, at a lower priority, each hashing into its own
//! reused Argon2 memory and giving it back when idle (see [`super::password`] for why).

use std::cell::RefCell;
use std::sync::mpsc::SyncSender;

use argon2::Block;

thread_local! {
    /// This hashing thread's Argon2 memory, grown once to the largest cost seen and reused.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `hash` on this thread's Argon2 memory of `blocks` blocks (grown if needed, then kept).
pub(super) fn with_memory<R>(blocks: usize, hash: impl FnOnce(&mut [Block]) -> R) -> R {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        hash(&mut memory[..blocks])
    })
}

/// The Argon2 blocks this thread holds (for the tests).
#[cfg(test)]
pub(super) fn memory_held() -> usize {
    MEMORY.with(|memory| memory.borrow().capacity())
}

/// Work for a hashing thread.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// How long a hashing thread waits for work before it gives its Argon2 memory back.
pub const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(1);

/// How much nicer than the process the hashing threads are: they get the CPU the requests leave,
/// so a login storm slows logins (bounded by the queue) rather than every other request.
pub const HASHING_NICE: i32 = 10;

/// `threads` hashing threads sharing a queue of `queue` waiting jobs; they end when every sender
/// is dropped. Each runs at [`HASHING_NICE`] and frees its Argon2 memory after [`IDLE_RELEASE`]
/// without work. That memory (19 MiB) goes back to the system only while glibc maps such
/// allocations on their own: always with `MALLOC_MMAP_THRESHOLD_` set (the image sets 4 MiB),
/// otherwise only the first time (glibc's dynamic threshold then rises above it and later ones
/// come from, and stay in, the heap).
///
/// A thread spends at most `cpu_percent` of its time hashing: after each job it rests for
/// [`rest_after`] of the CPU time the job took.
pub(super) fn spawn_hashing_threads(
    threads: usize,
    queue: usize,
    cpu_percent: u32,
) -> SyncSender<Job> {
    use std::sync::mpsc::RecvTimeoutError;
    let (jobs, waiting) = std::sync::mpsc::sync_channel::<Job>(queue);
    let waiting = std::sync::Arc::new(std::sync::Mutex::new(waiting));
    for n in 0..threads {
        let waiting = waiting.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("argon2-{n}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let job = {
                        let waiting = waiting
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        waiting.recv_timeout(IDLE_RELEASE)
                    };
                    match job {
                        Ok(job) => {
                            let started = thread_cpu_time();
                            job();
                            let worked = thread_cpu_time().saturating_sub(started);
                            std::thread::sleep(rest_after(worked, cpu_percent));
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            if !release_memory() {
                                // Already released: let the other idle threads have the queue's
                                // lock, so each of them times out and releases too.
                                std::thread::sleep(IDLE_RELEASE / 20);
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "could not start a password hashing thread");
        }
    }
    jobs
}

/// The CPU time this thread has used: a hash's cost without the time it waited for a core (on a
/// busy machine a nice +10 thread waits long, and resting for that too would starve logins).
/// Elsewhere than Linux, the time since the process's first call (wall time).
fn thread_cpu_time() -> std::time::Duration {
    #[cfg(target_os = "linux")]
    {
        let spent = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        std::time::Duration::new(
            u64::try_from(spent.tv_sec).unwrap_or(0),
            u32::try_from(spent.tv_nsec).unwrap_or(0),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// How long a thread that may hash `cpu_percent` of its time rests after hashing for `worked`.
pub(super) fn rest_after(worked: std::time::Duration, cpu_percent: u32) -> std::time::Duration {
    let percent = cpu_percent.clamp(1, 100);
    worked * (100 - percent) / percent
}

/// Frees this thread's Argon2 memory; false when it held none.
fn release_memory() -> bool {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let held = memory.capacity() > 0;
        *memory = Vec::new();
        held
    })
}

/// Lowers the calling thread's priority by [`HASHING_NICE`] (on Linux the nice value is per
/// thread, and a new thread starts with its creator's); a failure is logged and hashing goes on
/// at the process's priority. (Linux's `SCHED_IDLE` instead was measured and did not help the
/// feed's p99 during a login storm: BENCHMARKS.md.)
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let lowered =
            getpriority_process(None).and_then(|nice| setpriority_process(None, nicer(nice)));
        if let Err(error) = lowered {
            tracing::warn!(%error, "could not lower the password hashing thread's priority");
        }
    }
}

/// `nice` lowered by [`HASHING_NICE`], within the range the kernel accepts.
#[cfg(target_os = "linux")]
pub(super) fn nicer(nice: i32) -> i32 {
    (nice + HASHING_NICE).min(19)
}

/// This thread's nice value (for the tests).
#[cfg(all(test, target_os = "linux"))]
pub(super) fn current_nice() -> i32 {
    rustix::process::getpriority_process(None).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_rest_keeps_hashing_within_its_share_of_a_core() {
        let worked = Duration::from_millis(60);
        assert_eq!(rest_after(worked, 100), Duration::ZERO);
        assert_eq!(rest_after(worked, 50), worked);
        assert_eq!(rest_after(worked, 25), worked * 3);
        assert_eq!(rest_after(worked, 0), worked * 99, "clamped to 1 %");
        assert_eq!(rest_after(worked, 200), Duration::ZERO, "clamped to 100 %");
    }

    /// A thread allowed 10 % of a core rests nine times a job's CPU time before the next job: the
    /// next one starts no sooner (a lower bound, so a slow machine cannot fail it).
    #[test]
    fn a_capped_thread_rests_between_jobs() {
        const BURN: Duration = Duration::from_millis(20);
        let jobs = spawn_hashing_threads(1, 4, 10);
        let (done, finished) = std::sync::mpsc::channel::<Instant>();
        let first_done = done.clone();
        jobs.send(Box::new(move || {
            let started = thread_cpu_time();
            while thread_cpu_time().saturating_sub(started) < BURN {
                std::hint::black_box(0u64);
            }
            let _ = first_done.send(Instant::now());
        }))
        .unwrap();
        jobs.send(Box::new(move || {
            let _ = done.send(Instant::now());
        }))
        .unwrap();
        let first_ended = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        let second_began = finished.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            second_began.duration_since(first_ended) >= BURN * 9,
            "rested only {:?}",
            second_began.duration_since(first_ended)
        );
    }
}
