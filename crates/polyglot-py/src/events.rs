//! [`EventStream`]: the events of a runtime or a host as an iterator (and an async
//! iterator) of dicts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use tokio::sync::{mpsc, Mutex};

use crate::asyncio::into_asyncio;
use crate::backend::EventItem;
use crate::bridge::wait;
use crate::convert::into_python;
use crate::errors::Failure;

/// Events as they happen, each a ``dict``.
///
/// Every event has ``category`` (``"runtime"`` or ``"deployment"``), ``type``,
/// ``module`` and ``timestamp_ms`` (milliseconds since the Unix epoch). Runtime events
/// are ``worker_started`` (``instance``, ``pid``, ``version``), ``worker_exited``
/// (``instance``, ``reason``), ``health_changed`` (``instance``, ``from``, ``to``),
/// ``fallback_used`` (``method``, ``served_by``), ``reload_done``
/// (``old_version``, ``new_version``), ``module_loaded``, ``module_unloaded`` and
/// ``policies_updated`` (``version``), ``breaker_changed`` (``version``, ``from``,
/// ``to``, ``reason``). Deployment events (``staged``, ``started``,
/// ``stage_advanced``, ``held``, ``promoted``, ``succeeded``, ``failed``,
/// ``rolled_back``, ``released``, ...) carry ``version`` and ``message`` and, by type,
/// ``reason``, ``from``, ``to``, ``strategy``, ``stage``, ``percent``. A consumer that
/// falls more than 1024 events behind gets a ``lagged`` event with the count it
/// ``missed``.
///
/// Iterating blocks (the GIL released, Ctrl-C answered) until the next event; with a
/// ``timeout``, iteration ends when no event came for that long. ``get(timeout)`` waits
/// for one event and returns ``None`` on a timeout instead. ``close()`` (or leaving a
/// ``with`` block) ends the stream. ``async for`` works too.
#[pyclass(frozen, module = "polyglot")]
pub struct EventStream {
    rx: Arc<Mutex<mpsc::Receiver<EventItem>>>,
    task: tokio::task::AbortHandle,
    timeout: Option<Duration>,
    closed: Arc<AtomicBool>,
}

/// What waiting for the next event gave.
enum Next {
    Event(EventItem),
    /// The stream ended or was closed.
    End,
    /// Nothing came within the timeout.
    Quiet,
}

impl EventStream {
    /// A stream over the queue `rx`, filled by `task`.
    pub fn new(
        rx: mpsc::Receiver<EventItem>,
        task: tokio::task::AbortHandle,
        timeout: Option<Duration>,
    ) -> EventStream {
        EventStream {
            rx: Arc::new(Mutex::new(rx)),
            task,
            timeout,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn next_future(
        &self,
        timeout: Option<Duration>,
    ) -> impl std::future::Future<Output = Next> + Send + 'static {
        let (rx, closed) = (self.rx.clone(), self.closed.clone());
        async move {
            if closed.load(Ordering::SeqCst) {
                return Next::End;
            }
            let mut rx = rx.lock().await;
            let item = match timeout {
                Some(t) => match tokio::time::timeout(t, rx.recv()).await {
                    Ok(item) => item,
                    Err(_) => return Next::Quiet,
                },
                None => rx.recv().await,
            };
            match item {
                _ if closed.load(Ordering::SeqCst) => Next::End,
                Some(item) => Next::Event(item),
                None => Next::End,
            }
        }
    }

    fn deliver(py: Python<'_>, next: Next) -> PyResult<Option<Py<PyAny>>> {
        match next {
            Next::Event(Ok(v)) => into_python(py, v).map(Some),
            Next::Event(Err(f)) => Err(f.into_pyerr(py)),
            Next::End | Next::Quiet => Ok(None),
        }
    }
}

#[pymethods]
impl EventStream {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let next = wait(py, self.next_future(self.timeout))?;
        EventStream::deliver(py, next)
    }

    /// The next event, or ``None`` when none came within ``timeout`` seconds (``None``:
    /// wait as long as it takes) or the stream has ended.
    #[pyo3(signature = (timeout=None))]
    fn get(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let timeout = timeout
            .map(|t| crate::api::seconds_arg("timeout", t))
            .transpose()?;
        let next = wait(py, self.next_future(timeout))?;
        EventStream::deliver(py, next)
    }

    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let next = self.next_future(self.timeout);
        into_asyncio(
            py,
            async move { Ok::<_, Failure>(next.await) },
            |py, next| match EventStream::deliver(py, next)? {
                Some(v) => Ok(v),
                None => Err(PyStopAsyncIteration::new_err(())),
            },
        )
    }

    /// Ends the stream: iteration stops, and the runtime or host stops sending to it.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.task.abort();
    }

    /// Whether the stream was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        let state = if self.closed.load(Ordering::SeqCst) {
            "closed"
        } else {
            "open"
        };
        format!("<polyglot.EventStream {state}>")
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
