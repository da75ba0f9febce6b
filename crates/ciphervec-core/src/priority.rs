//! Worker threads run below normal priority, so they yield the CPU to the thread that called
//! into the library (in Node, the event loop) whenever it has work.
//!
//! At normal priority the scheduler shares the cores fairly between the JS thread and busy
//! workers, so with the pool on every core a timer on the JS thread waits for a time slice
//! although no library code runs on that thread (BENCHMARKS.md, "Event-loop blocking per
//! input form" and "Event-loop delay with our pool on every core"). At nice 10 a worker
//! weighs ~1/9 of a normal thread, so the JS thread runs as soon as it wakes, and the workers
//! still take all the CPU it leaves idle (unlike `SCHED_IDLE`, under which any other process
//! on the machine could starve them).

use std::cell::Cell;
use std::sync::OnceLock;

/// The nice value of worker threads, unless `CIPHERVEC_WORKER_NICE` sets another (0-19; 0
/// keeps them at normal priority, e.g. on a machine that runs nothing but the index).
const WORKER_NICE: i32 = 10;

/// The nice value workers take: [`WORKER_NICE`] or the environment's (read once).
fn worker_nice() -> i32 {
    static NICE: OnceLock<i32> = OnceLock::new();
    *NICE.get_or_init(|| {
        std::env::var("CIPHERVEC_WORKER_NICE")
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|n| (0..=19).contains(n))
            .unwrap_or(WORKER_NICE)
    })
}

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Lowers the calling thread's priority to the workers' nice value (once per thread; Linux
/// only, where nice values are per thread; a no-op elsewhere and where the OS refuses).
pub fn lower_current_thread() {
    if LOWERED.with(|l| l.replace(true)) {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread; failure leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, worker_nice());
    }
}

/// The calling thread's nice value (Linux), for tests.
#[cfg(all(test, target_os = "linux"))]
fn current_nice() -> i32 {
    // SAFETY: as above; errno is not needed because no test thread has nice -1.
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::syscall(libc::SYS_gettid) as libc::id_t) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn lowering_affects_only_the_calling_thread() {
        let before = current_nice();
        let lowered = std::thread::spawn(|| {
            lower_current_thread();
            lower_current_thread();
            current_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, worker_nice().max(before));
        assert_eq!(current_nice(), before, "the caller's thread is untouched");
    }
}
