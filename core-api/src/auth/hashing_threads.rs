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
pub(super) fn spawn_hashing_threads(threads: usize, queue: usize) -> SyncSender<Job> {
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
                        Ok(job) => job(),
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
