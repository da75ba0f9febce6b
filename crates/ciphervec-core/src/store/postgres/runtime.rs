//! The PostgreSQL client is asynchronous; the core's callers are plain threads. The store
//! runs a single-threaded tokio runtime on a thread of its own, and a call hands its future
//! to it and waits for the answer, bounded in time. (Blocking on a runtime from the caller's
//! thread would panic on a thread that is already inside one, as the addon's are; handing
//! futures over works from any thread.)

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// See the module docs. Dropping it stops the runtime (its tasks are dropped).
pub(crate) struct Runtime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Runtime {
    pub(crate) fn start() -> Result<Runtime> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("could not start the PostgreSQL runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("ciphervec-pg".into())
            .spawn(move || {
                // Its work (TLS, decoding rows) competes with the caller's thread like the pool's.
                crate::priority::lower_current_thread();
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| Error::Internal(format!("could not start the PostgreSQL thread: {e}")))?;
        Ok(Runtime { handle, stop: Some(stop), thread: Some(thread) })
    }

    /// Runs `work` on the runtime and waits for its result; `ERR_UNAVAILABLE` if it takes
    /// longer than `limit` (the work is then dropped, which cancels it).
    pub(crate) fn run<T, F>(&self, limit: Duration, what: &str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let out = tokio::time::timeout(limit, work).await;
            let _ = tx.send(out);
        });
        match rx.recv() {
            Ok(Ok(result)) => result,
            Ok(Err(_elapsed)) => {
                Err(Error::Unavailable(format!("{what} got no answer within {} ms", limit.as_millis())))
            }
            Err(_) => Err(Error::Closed("the PostgreSQL store".into())),
        }
    }

    /// Starts `work` on the runtime without waiting for it.
    pub(crate) fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(work);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // Not from the runtime's own thread (a task dropping the store): it would wait
            // for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}
