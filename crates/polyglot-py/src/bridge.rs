//! Between Python's threads and the extension's tokio runtime: one multi-thread runtime
//! for the process, and blocking waits that release the GIL and still answer Ctrl-C.
//! (Awaitables are in `asyncio`.)
//!
//! # Blocking calls
//! [`wait`] polls a future on the calling thread, inside the tokio runtime's context (its
//! timers and I/O are driven by the runtime's own threads), with the GIL released, in
//! slices of [`SIGNAL_POLL`]; between slices it takes the GIL back and runs
//! `PyErr_CheckSignals`, so a Ctrl-C raises `KeyboardInterrupt` within one slice. The
//! interrupted future is dropped, which cancels the call.
//!
//! Polling on the caller's thread, rather than spawning the future and waiting on a
//! channel, saves a thread hop on every call: the answer wakes the waiting thread
//! directly. Before it sleeps, the thread stays awake for [`SPIN`] (yielding its core),
//! so that a quick answer finds it awake: waking a sleeping thread is most of a small
//! call's latency. This is `Runtime::block_on` with that and a signal check, which
//! tokio's own does not offer.
//!
//! # Workers outlive the thread that started them
//! The runtime starts workers with a parent-death signal, which Linux sends when the
//! *thread* that forked them exits. Everything that may start a worker (loading,
//! reloading, deploying, rolling back, closing) therefore runs in a task on the tokio
//! runtime's own threads ([`wait_spawned`]), which live as long as the process, never on
//! a Python thread that may end first.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::Failure;

/// How often a blocking wait takes the GIL back to check for signals. 50 ms makes Ctrl-C
/// feel immediate, and costs a blocked thread twenty GIL round trips a second, nothing
/// next to the call it waits for.
pub const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The process's tokio runtime, started on first use. Its threads are named
/// `polyglot-tokio` so that they are recognisable in a debugger or `py-spy dump`.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("polyglot-tokio")
            .build()
            .expect("starting the tokio runtime (threads, epoll)")
    })
}

/// Runs `fut` to completion on this thread with the GIL released, checking for signals
/// every [`SIGNAL_POLL`]. A pending `KeyboardInterrupt` (or any exception a signal
/// handler raises) drops `fut` and is returned.
///
/// # Errors
/// The exception a signal handler raised.
pub fn wait<F>(py: Python<'_>, fut: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        // A tokio thread cannot block on the runtime it belongs to.
        return Err(PyRuntimeError::new_err(
            "a blocking polyglot call was made from a polyglot runtime thread; use the \
             awaitable form (acall) instead",
        ));
    }
    let mut fut = std::pin::pin!(fut);
    let waiter = Arc::new(Waiter {
        woken: AtomicBool::new(true),
        thread: std::thread::current(),
    });
    let waker = Waker::from(waiter.clone());
    loop {
        // A panic in the runtime (a bug) becomes an exception like any other failure,
        // not a `PanicException` that `except Exception` would miss; the future is
        // dropped.
        let slice = py.detach(|| {
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                drive(fut.as_mut(), &waiter, &waker, SIGNAL_POLL)
            }))
        });
        match slice {
            Ok(Some(out)) => return Ok(out),
            Ok(None) => py.check_signals()?,
            Err(panic) => return Err(Failure::from_panic(panic.as_ref()).into_pyerr(py)),
        }
    }
}

/// How long a waiting thread stays awake, yielding its core, checking for its answer,
/// before it sleeps. A reply within it finds a running thread (a store and a load)
/// instead of a sleeping one (a futex call and, on an idle virtual machine, an interrupt
/// to wake its CPU: tens of microseconds). A small call's round trip through a worker
/// takes 20 to 30 us. Measured with `bench/bench.py` on the 2-core development machine,
/// idle, a sequential small call took 75 us without this, 39 us with 20 us, 26 to 28 us
/// with 30 to 50 us; under a parallel build, 35 to 40 us spinning in place and 20 to
/// 25 us yielding. A longer call stays awake this long after each wake-up (a few per
/// call, and one per signal check), then sleeps.
pub const SPIN: Duration = Duration::from_micros(50);

/// The waker of a thread waiting in [`drive`]: sets `woken` and unparks it.
struct Waiter {
    woken: AtomicBool,
    thread: std::thread::Thread,
}

impl Wake for Waiter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

/// Polls `fut` on this thread, in the tokio runtime's context (its timers and I/O are
/// driven by the runtime's threads), until it is ready or `slice` has passed.
fn drive<F: Future>(
    mut fut: Pin<&mut F>,
    waiter: &Waiter,
    waker: &Waker,
    slice: Duration,
) -> Option<F::Output> {
    let _context = runtime().enter();
    let mut cx = Context::from_waker(waker);
    let end = Instant::now() + slice;
    loop {
        if waiter.woken.swap(false, Ordering::Acquire) {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return Some(out);
            }
            continue;
        }
        let spin_end = Instant::now() + SPIN;
        // Yielding, not spinning in place: on a busy machine the threads that make the
        // answer (the runtime's reader, the worker) may be waiting for this very core.
        while !waiter.woken.load(Ordering::Acquire) && Instant::now() < spin_end {
            std::thread::yield_now();
        }
        if waiter.woken.load(Ordering::Acquire) {
            continue;
        }
        let now = Instant::now();
        if now >= end {
            return None;
        }
        std::thread::park_timeout(end - now);
    }
}

/// Runs `fut` in a task on the tokio runtime's threads and waits for it as [`wait`]
/// does. An interrupted wait leaves the task running to its end: a deployment half
/// done is finished, not abandoned.
///
/// # Errors
/// The exception a signal handler raised, or [`Failure::internal`] when the task
/// panicked.
pub fn wait_spawned<F, T>(py: Python<'_>, fut: F) -> PyResult<Result<T, Failure>>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + 'static,
{
    let task = runtime().spawn(fut);
    Ok(wait(py, task)?.unwrap_or_else(|e| Err(Failure::from_join(e))))
}
