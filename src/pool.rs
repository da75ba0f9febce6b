//! The threads calls run on (`ciphervec-call`): one per call in flight at most, so a call that
//! waits for a lock never holds up another, and never created on the JS thread.
//!
//! tokio's blocking pool, which calls used before, starts a thread, on the submitting thread
//! and under its lock, whenever no thread is idle at that instant. Submitted from the JS thread
//! as a call settles, the next call came before the thread that ran the last one was idle
//! again, so 64 queries in flight grew the pool to its cap of 512 threads with a
//! `pthread_create` on the JS thread each time (BENCHMARKS.md, "Single-query latency: thread
//! hops (issue 16)"). Here a submitted job is taken by an idle thread if there is one, or else by whichever
//! thread finishes first; a thread of its own (`ciphervec-spawn`) starts a new one only when,
//! once it has woken, jobs are still waiting that no idle or starting thread will take. Idle
//! threads end after [`KEEP_ALIVE`]. A thread that finished a call while no other call runs
//! watches the queue for [`SPIN`] before it sleeps, so calls awaited one after another need no
//! wake-up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle thread waits for a job before it ends.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long a thread that finished a job watches the queue before it sleeps. Waking a
/// sleeping thread is the larger part of a call's round trip on a VM (~20 µs and more, a
/// host-side wake-up of an idle vCPU); a caller awaiting one call after another submits the
/// next ~30 µs after the last one settled, which a thread still watching takes at once.
const SPIN: Duration = Duration::from_micros(50);

pub type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
    /// Threads started that have not looked at the queue yet.
    starting: usize,
    /// Threads watching the queue before they sleep.
    spinning: usize,
    /// Jobs running.
    running: usize,
    /// Whether the spawner thread runs.
    spawner: bool,
}

impl State {
    /// Jobs that no idle or starting thread will take.
    fn unserved(&self) -> usize {
        self.queue.len().saturating_sub(self.idle + self.starting + self.spinning)
    }
}

#[derive(Default)]
struct Pool {
    state: Mutex<State>,
    /// Idle threads wait here for jobs.
    work: Condvar,
    /// The spawner waits here for jobs nobody will take.
    grow: Condvar,
    /// `state.queue.len()`, readable without the lock by spinning threads.
    queued: AtomicUsize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::default)
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so nothing panics while holding it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `job` on a pool thread. Cheap on the calling thread: a queue push and at most one
/// wake-up (the first call also starts the spawner thread).
pub fn submit(job: Job) {
    let pool = pool();
    let mut state = pool.lock();
    state.queue.push_back(job);
    pool.queued.store(state.queue.len(), Ordering::Release);
    // A spinning thread takes the job without a wake-up; sleepers are woken for the rest.
    if state.idle > 0 && state.queue.len() > state.spinning {
        pool.work.notify_one();
    }
    if state.unserved() > 0 {
        if !state.spawner {
            state.spawner = true;
            drop(state);
            std::thread::Builder::new()
                .name("ciphervec-spawn".into())
                .spawn(spawner)
                .expect("ciphervec: cannot start the thread that starts call threads");
        } else {
            pool.grow.notify_one();
        }
    }
}

/// Starts a thread for every job no thread will take, as they come.
fn spawner() {
    // Like every thread of the library, it yields to the JS thread (and the threads it starts
    // begin at its nice value).
    ciphervec_core::priority::lower_current_thread();
    let pool = pool();
    let mut state = pool.lock();
    loop {
        while state.unserved() == 0 {
            state = pool.grow.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.starting += 1;
        drop(state);
        let started = std::thread::Builder::new().name("ciphervec-call".into()).spawn(worker);
        state = pool.lock();
        if started.is_err() {
            // Out of threads for now: the queued jobs wait for a running thread; try again soon.
            state.starting -= 1;
            drop(state);
            std::thread::sleep(Duration::from_millis(10));
            state = pool.lock();
        }
    }
}

fn worker() {
    ciphervec_core::priority::lower_current_thread();
    let pool = pool();
    let mut state = pool.lock();
    state.starting -= 1;
    loop {
        if let Some(job) = state.queue.pop_front() {
            pool.queued.store(state.queue.len(), Ordering::Release);
            state.running += 1;
            drop(state);
            // A job settles its own promise (and catches its own panics); a panic past that
            // must not take the thread with it.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            // Watch the queue for a moment before sleeping (see `SPIN`), only when no other
            // call is running (a caller awaiting one call at a time) and one thread at a
            // time: with calls in flight the threads that run them, and the JS thread that
            // settles them, need the CPU it would burn (64 queries in flight ran at 0.9x).
            state = pool.lock();
            state.running -= 1;
            if state.queue.is_empty() && state.spinning == 0 && state.running == 0 {
                state.spinning += 1;
                drop(state);
                let since = Instant::now();
                while pool.queued.load(Ordering::Acquire) == 0 && since.elapsed() < SPIN {
                    std::hint::spin_loop();
                }
                state = pool.lock();
                state.spinning -= 1;
            }
            continue;
        }
        state.idle += 1;
        let (next, wait) = pool.work.wait_timeout(state, KEEP_ALIVE).unwrap_or_else(|e| e.into_inner());
        state = next;
        state.idle -= 1;
        if wait.timed_out() && state.queue.is_empty() {
            return;
        }
    }
}

/// How many single queries scan at once: twice the cores. Every call in flight has a thread,
/// so without a bound 64 queries in flight were 64 runnable threads; at nice 10 each weighs
/// 110 against the JS thread's 1024, so together they outweighed it ~7:1, and the JS thread,
/// which converts every query's arguments and results, waited for a CPU: the p99 gap of a 1 ms
/// timer was ~30 ms and throughput lower (BENCHMARKS.md, "Single-query latency: thread hops
/// (issue 16)"). A query waiting here sleeps; nothing waits here while holding a lock.
fn scan_slots() -> usize {
    static SLOTS: OnceLock<usize> = OnceLock::new();
    *SLOTS.get_or_init(|| 2 * std::thread::available_parallelism().map_or(1, |n| n.get()))
}

static SCANNING: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

/// Runs `scan` (a single query's search, on its call thread) once fewer than [`scan_slots`]
/// others are running.
pub fn scan<R>(scan: impl FnOnce() -> R) -> R {
    let limit = scan_slots();
    let mut scanning = SCANNING.lock().unwrap_or_else(|e| e.into_inner());
    while *scanning >= limit {
        scanning = SLOT_FREED.wait(scanning).unwrap_or_else(|e| e.into_inner());
    }
    *scanning += 1;
    drop(scanning);
    /// Frees the slot however `scan` ends.
    struct Slot;
    impl Drop for Slot {
        fn drop(&mut self) {
            *SCANNING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
            SLOT_FREED.notify_one();
        }
    }
    let _slot = Slot;
    scan()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::{Arc, Barrier};

    #[test]
    fn every_job_runs_even_when_all_threads_wait() {
        // 32 jobs that each wait until all 32 run at once: they need a thread each.
        let barrier = Arc::new(Barrier::new(32));
        let (tx, rx) = mpsc::channel();
        for i in 0..32 {
            let (barrier, tx) = (barrier.clone(), tx.clone());
            submit(Box::new(move || {
                barrier.wait();
                tx.send(i).unwrap();
            }));
        }
        let mut got: Vec<i32> = (0..32).map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap()).collect();
        got.sort();
        assert_eq!(got, (0..32).collect::<Vec<_>>());
        // Sequential jobs after that reuse the threads.
        for i in 0..100 {
            let tx = tx.clone();
            submit(Box::new(move || tx.send(i).unwrap()));
            assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), i);
        }
        // A panicking job leaves the pool working.
        submit(Box::new(|| panic!("a job panicked")));
        submit(Box::new(move || tx.send(-1).unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), -1);
    }

    #[test]
    fn scans_run_at_most_slots_at_once_and_free_their_slot_on_panic() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = (0..4 * scan_slots())
            .map(|_| {
                let (now, most) = (now.clone(), most.clone());
                std::thread::spawn(move || {
                    scan(|| {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert!(most.load(Ordering::SeqCst) <= scan_slots());
        for _ in 0..scan_slots() {
            assert!(std::panic::catch_unwind(|| scan(|| panic!("a scan panicked"))).is_err());
        }
        assert_eq!(scan(|| 5), 5, "every slot was given back");
    }
}
