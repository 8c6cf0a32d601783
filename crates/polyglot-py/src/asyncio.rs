//! asyncio futures for calls that run on tokio, started and completed in batches per
//! event loop, without the GIL on tokio's threads.
//!
//! # How a call goes
//! [`into_asyncio`] runs on the event loop's thread. It finds the loop's [`LoopQueue`]
//! (made and registered with the loop on its first call), creates the future it returns,
//! a `polyglot._futures.CallFuture`, and queues the call's job on the loop's queue. The
//! first call queued since the last start schedules `LoopQueue._start` with
//! `loop.call_soon`. At the loop's next turn, `_start` spawns one tokio task, which
//! spawns every job queued meanwhile from inside the runtime.
//!
//! When a job is done, its tokio task does not touch Python: it pushes the output onto
//! the loop's completion queue and, if the loop has not been woken since it last drained
//! the queue, writes one byte to a socket the loop watches (`loop.add_reader`). The loop,
//! on its own thread and with the GIL it already holds, drains the queue
//! (`LoopQueue._drain`): converts each output and sets each future's result.
//!
//! Cancelling the future (`Task.cancel`, `wait_for`, `asyncio.timeout`, `gather`: each
//! calls the awaited future's `cancel`) runs `CallFuture.cancel`, which cancels its
//! [`Call`]: a job not started yet is dropped unstarted, a running task is aborted, which
//! drops the call. An output that arrives for a future already done is dropped.
//!
//! # Why it is built this way
//! asyncio's own work per call (a future, a task step, a callback) is about 3 us on the
//! 2-core development machine, and so is a blocking `call` of an in-process builtin.
//! With 64 calls in flight, the first design spent 9 to 17 us per `acall` of one when
//! the machine was idle, and over 30 us when other work kept both cores busy; this one,
//! 7 to 10 us and 12 to 13 us. What it cost, and what replaced it:
//!
//! - *Starting each call at once.* A task spawned from outside the runtime (the loop's
//!   thread) goes through tokio's shared queue and wakes a parked worker. A quick call
//!   (an in-process builtin) is over before the loop makes the next one, so the worker
//!   parks again and the next spawn wakes it again: a futex wake and two context
//!   switches per call, and on a busy machine the woken worker takes the loop's core.
//!   Queued until the loop's next turn and spawned by one task from inside the runtime
//!   (onto a worker's own queue, which wakes nobody), a burst of calls wakes the runtime
//!   once. 80,000 calls, 64 in flight, made 62,720 context switches, 12,583 now. The
//!   price: like a task made by `asyncio.create_task`, a call starts when the code that
//!   made it yields to the loop, not at once.
//! - *A done-callback per future*, to abort the task on cancellation: a callable made
//!   per call and, when the future completes, one more loop callback per call. The
//!   `cancel` override costs nothing unless the future is cancelled.
//! - *A `WeakKeyDictionary` lookup of the loop's queue*, a Python method per call. The
//!   registry here compares loops by identity through weak references, running no
//!   Python code.
//! - *Method names made into Python strings per call*; interned once now (`intern!`).
//! - *Moving the call's future*, kilobytes, into the task: boxed once, and the task
//!   holds the pointer.
//!
//! Completions were batched already: the naive design, taking the GIL on the tokio
//! thread to call `loop.call_soon_threadsafe` for each call, makes every tokio worker
//! wait for the GIL the event loop holds while it runs, and a thousand calls cost a
//! thousand wake-ups of the loop. Here a burst of completions costs one wake-up and one
//! batch. The figures, before and after, are in `docs/benchmarks.md` ("Python
//! package").

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyWeakrefReference};
use tokio::task::AbortHandle;

use crate::bridge::runtime;
use crate::errors::Failure;

/// Converts a finished Rust output into the Python result of an awaitable.
pub type Convert<T> = fn(Python<'_>, T) -> PyResult<Py<PyAny>>;

/// Makes a finished call's result (or exception), with the GIL, on the loop's thread.
type Settle = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// A call's work on the tokio runtime: the call, then the push of its completion. Boxed
/// once, so that spawning it moves a pointer, not the call's whole state.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Locks `m`; a panic elsewhere while it was held (a bug) does not make it unusable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An output waiting for its loop: the future, and how to make its result.
struct Completion {
    future: Py<PyAny>,
    settle: Settle,
}

/// The side of a loop's queue that tokio tasks push to.
struct Queue {
    done: Mutex<Vec<Completion>>,
    /// Set when a byte was written and the loop has not drained since.
    woken: AtomicBool,
    wake: UnixStream,
}

impl Queue {
    fn push(&self, c: Completion) {
        lock(&self.done).push(c);
        if !self.woken.swap(true, Ordering::AcqRel) {
            // A full socket already holds a wake-up; a closed loop has nobody to wake.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// Where a call is. Shared by its [`Call`] (on the loop's side) and the task that
/// starts it (on tokio's).
enum Stage {
    /// Queued on its loop, not started yet.
    Queued,
    /// Running in a tokio task.
    Running(AbortHandle),
    /// Cancelled: never started, or its task aborted.
    Cancelled,
}

type SharedStage = Arc<Mutex<Stage>>;

/// One call behind a `CallFuture` (its `_call`), for cancelling it.
#[pyclass(frozen, module = "polyglot")]
pub struct Call {
    stage: SharedStage,
}

#[pymethods]
impl Call {
    /// Cancels the call: queued, it never starts; running, its task is aborted, which
    /// drops the call (a worker is told to cancel it).
    fn cancel(&self) {
        let was = std::mem::replace(&mut *lock(&self.stage), Stage::Cancelled);
        if let Stage::Running(task) = was {
            task.abort();
        }
    }
}

/// One event loop's calls: those queued to start at its next turn, and the completion
/// queue its `_drain` (the loop's reader callback for `reader`) empties.
#[pyclass(frozen, module = "polyglot")]
pub struct LoopQueue {
    queue: Arc<Queue>,
    reader: UnixStream,
    /// Calls made since the last `_start`, with their jobs.
    queued: Mutex<Vec<(SharedStage, Job)>>,
}

#[pymethods]
impl LoopQueue {
    /// Starts every queued call whose future was not cancelled meanwhile. Runs on the
    /// event loop's thread, scheduled by the first call queued since the last start.
    fn _start(&self) {
        let mut batch = std::mem::take(&mut *lock(&self.queued));
        // Cancelled before they started: dropped here, with the GIL (a job holds its
        // future, whose last reference this may be).
        batch.retain(|(stage, _)| matches!(*lock(stage), Stage::Queued));
        if batch.is_empty() {
            return;
        }
        // One task spawns the batch from inside the runtime (see the module's doc).
        runtime().spawn(async move {
            for (stage, job) in batch {
                let mut stage = lock(&stage);
                if matches!(*stage, Stage::Queued) {
                    *stage = Stage::Running(tokio::spawn(job).abort_handle());
                }
                // Else cancelled since `_start`: the job is dropped unstarted (pyo3
                // releases its future's reference later, with the GIL).
            }
        });
    }

    /// Sets the result of every finished call whose future still waits. Runs on the
    /// event loop's thread.
    fn _drain(&self, py: Python<'_>) {
        let mut buf = [0u8; 256];
        // The socket is non-blocking: read until it is empty.
        while matches!((&self.reader).read(&mut buf), Ok(n) if n > 0) {}
        // Cleared before taking the batch: a push after this wakes the loop again.
        self.queue.woken.store(false, Ordering::Release);
        let batch = std::mem::take(&mut *lock(&self.queue.done));
        for c in batch {
            let future = c.future.bind(py);
            let set = match (c.settle)(py) {
                Ok(v) => future.call_method1(intern!(py, "set_result"), (v,)),
                Err(e) => future.call_method1(intern!(py, "set_exception"), (e.into_value(py),)),
            };
            if let Err(e) = set {
                // Done already (cancelled meanwhile: nobody awaits it) is expected; any
                // other failure is reported.
                let done = future
                    .call_method0(intern!(py, "done"))
                    .and_then(|d| d.is_truthy());
                if !matches!(done, Ok(true)) {
                    e.write_unraisable(py, Some(future));
                }
            }
        }
    }
}

/// A registered loop: a weak reference to it, and its queue.
struct Registered {
    event_loop: Py<PyWeakrefReference>,
    queue: Py<LoopQueue>,
}

/// The loops that have had a call, compared by identity. Entries of loops that are gone
/// are removed when a new loop registers.
static LOOPS: Mutex<Vec<Registered>> = Mutex::new(Vec::new());

/// The queue of `event_loop`, made and registered with it on first use.
///
/// No Python code runs while [`LOOPS`] is locked (a weak reference's `upgrade` and an
/// identity test run none), so the lock cannot be held across a release of the GIL.
fn loop_queue<'py>(
    py: Python<'py>,
    event_loop: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, LoopQueue>> {
    let gone = {
        let mut loops = lock(&LOOPS);
        if let Some(r) = loops.iter().find(|r| {
            r.event_loop
                .bind(py)
                .upgrade()
                .is_some_and(|l| l.is(event_loop))
        }) {
            return Ok(r.queue.bind(py).clone());
        }
        let (live, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut *loops)
            .into_iter()
            .partition(|r| r.event_loop.bind(py).upgrade().is_some());
        *loops = live;
        gone
    };
    // Dropped unlocked: dropping a queue may drop futures, and so run Python code.
    drop(gone);

    let (reader, wake) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    wake.set_nonblocking(true)?;
    let fd = reader.as_raw_fd();
    let queue = Bound::new(
        py,
        LoopQueue {
            queue: Arc::new(Queue {
                done: Mutex::new(Vec::new()),
                woken: AtomicBool::new(false),
                wake,
            }),
            reader,
            queued: Mutex::new(Vec::new()),
        },
    )?;
    event_loop.call_method1("add_reader", (fd, queue.getattr("_drain")?))?;
    let weak = PyWeakrefReference::new(event_loop)?.unbind();
    lock(&LOOPS).push(Registered {
        event_loop: weak,
        queue: queue.clone().unbind(),
    });
    Ok(queue)
}

/// An awaitable on the running event loop for `fut`, which runs on the tokio runtime
/// from the loop's next turn. Its output is converted by `convert` on the loop's thread
/// and becomes the awaitable's result; a [`Failure`] becomes its exception. Cancelling
/// the awaitable cancels `fut`.
///
/// # Errors
/// `RuntimeError` when no event loop is running in this thread (call it from a
/// coroutine).
pub fn into_asyncio<'py, F, T>(
    py: Python<'py>,
    fut: F,
    convert: Convert<T>,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + 'static,
{
    let event_loop = imported(py)?.get_running_loop.bind(py).call0()?;
    let lq = loop_queue(py, &event_loop)?;
    // The loop passed, not looked up again: finding the running loop costs a `getpid`.
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "loop"), &event_loop)?;
    let future = imported(py)?.call_future.bind(py).call((), Some(&kwargs))?;
    let stage = Arc::new(Mutex::new(Stage::Queued));
    let call = Bound::new(
        py,
        Call {
            stage: stage.clone(),
        },
    )?;
    future.setattr(intern!(py, "_call"), call)?;
    let queue = lq.get().queue.clone();
    let handle = future.clone().unbind();
    // Boxed before it is moved again: a call's future is kilobytes.
    let fut = Box::pin(fut);
    let job: Job = Box::pin(async move {
        let out = fut.await;
        let completion = Completion {
            future: handle,
            settle: Box::new(move |py| match out {
                Ok(v) => convert(py, v),
                Err(f) => Err(f.into_pyerr(py)),
            }),
        };
        queue.push(completion);
    });
    let first = {
        let mut queued = lock(&lq.get().queued);
        queued.push((stage, job));
        queued.len() == 1
    };
    if first {
        let start = lq.getattr(intern!(py, "_start"))?;
        if let Err(e) = event_loop.call_method1(intern!(py, "call_soon"), (start,)) {
            // Not scheduled: the call is not queued either, so the next one tries again.
            let unqueued = lock(&lq.get().queued).pop();
            drop(unqueued);
            return Err(e);
        }
    }
    Ok(future)
}

/// What `into_asyncio` uses of Python, looked up once.
struct Imported {
    /// `asyncio.get_running_loop`.
    get_running_loop: Py<PyAny>,
    /// `polyglot._futures.CallFuture`.
    call_future: Py<PyAny>,
}

fn imported(py: Python<'_>) -> PyResult<&Imported> {
    static IMPORTED: PyOnceLock<Imported> = PyOnceLock::new();
    IMPORTED.get_or_try_init(py, || {
        Ok(Imported {
            get_running_loop: py.import("asyncio")?.getattr("get_running_loop")?.unbind(),
            call_future: py
                .import("polyglot._futures")?
                .getattr("CallFuture")?
                .unbind(),
        })
    })
}
