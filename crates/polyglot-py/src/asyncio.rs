//! asyncio futures completed by tokio tasks, without the GIL on tokio's threads.
//!
//! [`into_asyncio`] creates a future on the running event loop and spawns the Rust future
//! on the tokio runtime. When that is done, the task does not touch Python: it pushes the
//! output onto its loop's completion queue and, if the loop has not been woken since it
//! last drained the queue, writes one byte to a socket the loop watches
//! (`loop.add_reader`). The loop, on its own thread and with the GIL it already holds,
//! drains the queue: converts each output and sets each future's result.
//!
//! The naive design, taking the GIL on the tokio thread to call
//! `loop.call_soon_threadsafe` for each call, makes every tokio worker wait for the GIL
//! the event loop holds while it runs: with many calls in flight the runtime's threads
//! spend their time blocked, and a thousand calls cost a thousand wake-ups of the loop.
//! Here a burst of completions costs one wake-up and one batch, and tokio's threads never
//! wait for Python.
//!
//! Cancelling the asyncio future (`wait_for`, a cancelled task) aborts the tokio task,
//! which drops the call; an output that arrives for a future already done is dropped.

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

use crate::bridge::runtime;
use crate::errors::Failure;

/// Converts a finished Rust output into the Python result of an awaitable.
pub type Convert<T> = fn(Python<'_>, T) -> PyResult<Py<PyAny>>;

/// Makes a finished call's result (or exception), with the GIL, on the loop's thread.
type Settle = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

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
        self.done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(c);
        if !self.woken.swap(true, Ordering::AcqRel) {
            // A full socket already holds a wake-up; a closed loop has nobody to wake.
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// One event loop's completion queue; its `_drain` is the loop's reader callback.
#[pyclass(frozen, module = "polyglot")]
pub struct LoopQueue {
    queue: Arc<Queue>,
    reader: UnixStream,
}

#[pymethods]
impl LoopQueue {
    /// Sets the result of every finished call whose future still waits. Runs on the
    /// event loop's thread.
    fn _drain(&self, py: Python<'_>) {
        let mut buf = [0u8; 256];
        // The socket is non-blocking: read until it is empty.
        while matches!((&self.reader).read(&mut buf), Ok(n) if n > 0) {}
        // Cleared before taking the batch: a push after this wakes the loop again.
        self.queue.woken.store(false, Ordering::Release);
        let batch = std::mem::take(
            &mut *self
                .queue
                .done
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for c in batch {
            let future = c.future.bind(py);
            if !matches!(
                future.call_method0("done").and_then(|d| d.is_truthy()),
                Ok(false)
            ) {
                continue; // cancelled meanwhile: nobody awaits it
            }
            let set = match (c.settle)(py) {
                Ok(v) => future.call_method1("set_result", (v,)),
                Err(e) => future.call_method1("set_exception", (e.into_value(py),)),
            };
            if let Err(e) = set {
                e.write_unraisable(py, Some(future));
            }
        }
    }
}

/// The completion queue of `event_loop`, made and registered with it on first use.
fn queue_of(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Queue>> {
    static QUEUES: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let queues = QUEUES
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("weakref")?
                    .getattr("WeakKeyDictionary")?
                    .call0()?
                    .unbind(),
            )
        })?
        .bind(py);
    if let Ok(q) = queues
        .call_method1("get", (event_loop,))?
        .cast::<LoopQueue>()
    {
        return Ok(q.get().queue.clone());
    }
    let (reader, wake) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    wake.set_nonblocking(true)?;
    let fd = reader.as_raw_fd();
    let queue = Arc::new(Queue {
        done: Mutex::new(Vec::new()),
        woken: AtomicBool::new(false),
        wake,
    });
    let lq = Bound::new(
        py,
        LoopQueue {
            queue: queue.clone(),
            reader,
        },
    )?;
    event_loop.call_method1("add_reader", (fd, lq.getattr("_drain")?))?;
    queues.set_item(event_loop, lq)?;
    Ok(queue)
}

/// An awaitable on the running event loop for `fut`, which runs on the tokio runtime.
/// Its output is converted by `convert` on the loop's thread and becomes the
/// awaitable's result; a [`Failure`] becomes its exception.
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
    let event_loop = asyncio(py)?.call_method0("get_running_loop")?;
    let queue = queue_of(py, &event_loop)?;
    let future = event_loop.call_method0("create_future")?;
    let handle = future.clone().unbind();
    let task = runtime().spawn(async move {
        let out = fut.await;
        queue.push(Completion {
            future: handle,
            settle: Box::new(move |py| match out {
                Ok(v) => convert(py, v),
                Err(f) => Err(f.into_pyerr(py)),
            }),
        });
    });
    let abort = task.abort_handle();
    let on_done = PyCFunction::new_closure(py, None, None, move |args, _kwargs| -> PyResult<()> {
        if args.get_item(0)?.call_method0("cancelled")?.is_truthy()? {
            abort.abort();
        }
        Ok(())
    })?;
    future.call_method1("add_done_callback", (on_done,))?;
    Ok(future)
}

/// The module `asyncio`, imported once.
fn asyncio(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static ASYNCIO: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    ASYNCIO
        .get_or_try_init(py, || py.import("asyncio").map(Bound::unbind))
        .map(|m| m.bind(py))
}
