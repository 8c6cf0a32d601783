//! [`Api`]: the methods `Runtime` and `Client` share (calls, modules, deployments,
//! events, closing), each a thin layer over a [`Backend`] operation; and [`Reply`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use polyglot_core::Value;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::asyncio::into_asyncio;
use crate::backend::{Backend, CallArgs, Control, ReplyData, DEFAULT_BY};
use crate::bridge::{wait, wait_spawned};
use crate::convert::{from_python, into_python, to_python, type_name};
use crate::errors::Failure;
use crate::events::EventStream;
use crate::model;

/// `t` seconds as a duration, refusing negative and non-finite values.
///
/// # Errors
/// `ValueError` naming `param`.
pub fn seconds_arg(param: &str, t: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(t).map_err(|_| {
        PyValueError::new_err(format!(
            "{param} must be a number of seconds, 0 or more, got {t}"
        ))
    })
}

/// A timeout argument: seconds (`int`, `float`) or a `datetime.timedelta`.
fn timeout_arg(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    let secs: f64 = if v.hasattr("total_seconds")? {
        v.call_method0("total_seconds")?.extract()?
    } else {
        v.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "timeout must be seconds (int or float) or a datetime.timedelta, not {}",
                type_name(v)
            ))
        })?
    };
    seconds_arg("timeout", secs).map(Some)
}

/// The interface of [`polyglot.Runtime`] (a runtime in this process) and
/// [`polyglot.Client`] (a running ``polyglot-host``): calls, modules, deployments,
/// events. Not created directly.
#[pyclass(subclass, frozen, module = "polyglot")]
pub struct Api {
    backend: Backend,
    closed: AtomicBool,
}

impl Api {
    /// An open handle on `backend`.
    pub fn new(backend: Backend) -> Api {
        Api {
            backend,
            closed: AtomicBool::new(false),
        }
    }

    /// The backend, unless closed.
    fn backend(&self) -> Result<Backend, Failure> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Failure::new(
                "shutting_down",
                "this runtime is closed and takes no calls",
            ));
        }
        Ok(self.backend.clone())
    }

    /// Whether the backend is a runtime in this process.
    pub fn is_embedded(&self) -> bool {
        matches!(self.backend, Backend::Embedded(_))
    }

    /// The embedded runtime, if this is one.
    pub fn embedded(&self) -> Option<&polyglot_core::Runtime> {
        match &self.backend {
            Backend::Embedded(rt) => Some(rt),
            Backend::Remote(_) => None,
        }
    }

    /// Whether the handle was closed.
    pub fn closed_now(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Marks the handle closed; true the first time.
    fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }

    /// Runs `op` on the backend in a tokio task and converts its output with `out`.
    fn run<T, F>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(Backend) -> F,
        out: impl FnOnce(T) -> Value,
    ) -> PyResult<Py<PyAny>>
    where
        F: std::future::Future<Output = Result<T, Failure>> + Send + 'static,
        T: Send + 'static,
    {
        let backend = self.backend().map_err(|f| f.into_pyerr(py))?;
        let value = wait_spawned(py, op(backend))?.map_err(|f| f.into_pyerr(py))?;
        into_python(py, out(value))
    }
}

/// The arguments of a call: `*args` become an array of positional params unless
/// `params` gives the params whole (a dict of named params, say).
fn call_args(
    module: String,
    method: String,
    args: &Bound<'_, PyTuple>,
    params: Option<&Bound<'_, PyAny>>,
    timeout: Option<&Bound<'_, PyAny>>,
    routing_key: Option<String>,
) -> PyResult<CallArgs> {
    let params = match params {
        Some(p) if !args.is_empty() => {
            return Err(PyTypeError::new_err(format!(
                "give the params either as positional arguments or as params=, not both \
                 ({} positional, and params of type {})",
                args.len(),
                type_name(p)
            )))
        }
        Some(p) => from_python(p)?,
        None => from_python(args.as_any())?,
    };
    Ok(CallArgs {
        module,
        method,
        params,
        timeout: timeout_arg(timeout)?,
        routing_key,
    })
}

fn reply_value(py: Python<'_>, r: ReplyData) -> PyResult<Py<PyAny>> {
    into_python(py, r.value)
}

fn reply_object(py: Python<'_>, r: ReplyData) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, Reply::new(py, r)?)?.into_any())
}

fn array(items: impl Iterator<Item = Value>) -> Value {
    Value::Array(items.collect())
}

#[pymethods]
impl Api {
    /// Calls ``method`` of ``module`` and returns its result.
    ///
    /// ``*args`` are the method's positional params; ``params=`` gives the params
    /// whole instead (a ``dict`` of named params, say). ``timeout`` (seconds or a
    /// ``timedelta``) replaces the module's deadline. ``routing_key`` keeps every call
    /// with the same key on one version while a deployment splits the traffic.
    ///
    /// Blocks with the GIL released, so other threads run and call meanwhile; Ctrl-C
    /// interrupts it (the call is cancelled). Raises a ``PolyglotError`` subclass:
    /// ``ModuleNotFound``, ``MethodNotFound``, ``Timeout``, ``RemoteError`` (the method's
    /// own error, with ``code``, ``message``, ``data``), ``WorkerExited``,
    /// ``Unavailable``, ``Overloaded``, ``FrameTooLarge``, ``FallbackFailed``,
    /// ``ShuttingDown``.
    #[pyo3(signature = (module, method, *args, params=None, timeout=None, routing_key=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature: keyword arguments
    fn call(
        &self,
        py: Python<'_>,
        module: String,
        method: String,
        args: &Bound<'_, PyTuple>,
        params: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        routing_key: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let a = call_args(module, method, args, params, timeout, routing_key)?;
        let backend = self.backend().map_err(|f| f.into_pyerr(py))?;
        let reply = wait(py, backend.call(a))?.map_err(|f| f.into_pyerr(py))?;
        reply_value(py, reply)
    }

    /// :meth:`call` as an awaitable, for asyncio: ``await rt.acall("m", "f", 1)``.
    ///
    /// Returns an ``asyncio.Future``. The call starts when the caller yields to the event
    /// loop and runs on the extension's own threads; the event loop is never blocked, and
    /// thousands of calls may be pending at once. Cancelling the future, or the task
    /// awaiting it, cancels the call.
    #[pyo3(signature = (module, method, *args, params=None, timeout=None, routing_key=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature: keyword arguments
    fn acall<'py>(
        &self,
        py: Python<'py>,
        module: String,
        method: String,
        args: &Bound<'py, PyTuple>,
        params: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        routing_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = call_args(module, method, args, params, timeout, routing_key)?;
        let backend = self.backend().map_err(|f| f.into_pyerr(py))?;
        into_asyncio(py, backend.call(a), reply_value)
    }

    /// :meth:`call`, returning a :class:`Reply`: the result and who served it (the
    /// implementation, its version, whether a fallback did, the instance, the time the
    /// method took).
    #[pyo3(signature = (module, method, *args, params=None, timeout=None, routing_key=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature: keyword arguments
    fn call_reply(
        &self,
        py: Python<'_>,
        module: String,
        method: String,
        args: &Bound<'_, PyTuple>,
        params: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        routing_key: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let a = call_args(module, method, args, params, timeout, routing_key)?;
        let backend = self.backend().map_err(|f| f.into_pyerr(py))?;
        let reply = wait(py, backend.call(a))?.map_err(|f| f.into_pyerr(py))?;
        reply_object(py, reply)
    }

    /// :meth:`call_reply` as an awaitable.
    #[pyo3(signature = (module, method, *args, params=None, timeout=None, routing_key=None))]
    #[allow(clippy::too_many_arguments)] // the Python signature: keyword arguments
    fn acall_reply<'py>(
        &self,
        py: Python<'py>,
        module: String,
        method: String,
        args: &Bound<'py, PyTuple>,
        params: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        routing_key: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = call_args(module, method, args, params, timeout, routing_key)?;
        let backend = self.backend().map_err(|f| f.into_pyerr(py))?;
        into_asyncio(py, backend.call(a), reply_object)
    }

    /// Every loaded module, sorted by name, as a list of dicts: ``name``,
    /// ``implementation``, ``version``, ``language``, ``in_process``, ``state``
    /// (starting, running, failed, draining, stopped), ``health`` (healthy, degraded,
    /// unhealthy), ``methods``, ``fallback``, ``instances`` (each with ``index``,
    /// ``state``, ``pid``, ``restarts``, ``in_flight``, ``last_error``), ``restarts``,
    /// ``in_flight``, ``last_error``.
    fn modules(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run(py, Backend::modules, |m| {
            array(m.iter().map(model::module_value))
        })
    }

    /// One module, as a dict (see :meth:`modules`). Raises ``ModuleNotFound``.
    fn module(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        self.run(py, |b| b.module(name), |m| model::module_value(&m))
    }

    /// A module's health: ``"healthy"``, ``"degraded"`` or ``"unhealthy"`` (no worker
    /// takes calls; they go to its fallback). Raises ``ModuleNotFound``.
    fn health(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        self.run(py, |b| b.module(name), |m| Value::from(m.health))
    }

    /// Reloads a module without downtime: re-reads its manifest, builds, starts new
    /// workers, switches calls to them, and drains the old ones. Returns ``{"module",
    /// "old_version", "new_version"}``. Raises ``ModuleNotFound``, or ``LoadError``
    /// (the running version keeps serving).
    fn reload(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        self.run(
            py,
            |b| b.reload(name),
            |r| {
                let mut m = std::collections::BTreeMap::new();
                m.insert("module".to_owned(), Value::from(r.module));
                m.insert("old_version".to_owned(), Value::from(r.old_version));
                m.insert("new_version".to_owned(), Value::from(r.new_version));
                Value::Map(m)
            },
        )
    }

    /// Deploys the version of ``module`` in folder ``path`` (holding its
    /// ``module.json``) by ``strategy``, and returns the new version's id.
    ///
    /// Strategies and their options (durations in seconds or ``timedelta``):
    ///
    /// - ``"immediate"``: all traffic once its checks pass.
    /// - ``"blue_green"``: ``grace`` (30), ``deadline``.
    /// - ``"rolling"``: ``replicas``, ``max_surge``, ``max_unavailable`` (a count or
    ///   ``"25%"``), ``deadline``.
    /// - ``"canary"``: ``stages`` (percents, e.g. ``[5, 25, 100]``), ``stage_duration``
    ///   (30), ``manual``, ``deadline``.
    /// - ``"ab_test"``: ``split`` (the new version's percent of routing keys),
    ///   ``deadline`` (3600).
    /// - ``"shadow"``: ``duration`` (60), ``manual``, ``deadline``.
    ///
    /// ``at`` (a ``datetime`` or Unix seconds) schedules the start; ``by`` and ``why``
    /// go into the history. Immediate and blue-green deployments have switched when this
    /// returns; the others go on (follow them with :meth:`deployment` or
    /// :meth:`events`). With a host, ``path`` is on the host's machine. Raises
    /// ``DeploymentError`` (``code`` says which case), ``InvalidArgument``,
    /// ``ModuleNotFound``; whatever fails, the active version keeps serving.
    #[pyo3(signature = (
        module, path, strategy="immediate", *, by=None, why=None, at=None, **options
    ))]
    #[allow(clippy::too_many_arguments)] // the Python signature: each is a keyword argument
    fn deploy(
        &self,
        py: Python<'_>,
        module: String,
        path: std::path::PathBuf,
        strategy: &str,
        by: Option<String>,
        why: Option<String>,
        at: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let strategy = crate::strategy::from_python(strategy, options, at)?;
        let path = path.to_string_lossy().into_owned();
        let by = by.unwrap_or_else(|| DEFAULT_BY.to_owned());
        let why = why.unwrap_or_default();
        self.run(
            py,
            move |b| b.deploy(module, path, strategy, by, why),
            |r| Value::from(r.version),
        )
    }

    /// Rolls ``module`` back: the deployment in progress, or the active version, to
    /// version ``to`` or (``None``) the most recently active version known healthy.
    /// Returns the version that took the traffic. Raises ``DeploymentError`` (``code``
    /// ``"no_rollback_target"``, ...), ``ModuleNotFound``.
    #[pyo3(signature = (module, to=None))]
    fn rollback(&self, py: Python<'_>, module: String, to: Option<String>) -> PyResult<Py<PyAny>> {
        self.run(py, |b| b.rollback(module, to), |r| Value::from(r.version))
    }

    /// Moves ``module``'s deployment on now (the next canary stage, B of an A/B test,
    /// the end of a shadow or a grace period); its analysis must have passed. Returns
    /// the deployment (see :meth:`deployment`).
    fn advance(&self, py: Python<'_>, module: String) -> PyResult<Py<PyAny>> {
        self.run(
            py,
            |b| b.control(module, Control::Advance),
            |s| model::status_value(&s),
        )
    }

    /// Pauses ``module``'s deployment. Returns the deployment.
    fn pause(&self, py: Python<'_>, module: String) -> PyResult<Py<PyAny>> {
        self.run(
            py,
            |b| b.control(module, Control::Pause),
            |s| model::status_value(&s),
        )
    }

    /// Resumes ``module``'s paused deployment. Returns the deployment.
    fn resume(&self, py: Python<'_>, module: String) -> PyResult<Py<PyAny>> {
        self.run(
            py,
            |b| b.control(module, Control::Resume),
            |s| model::status_value(&s),
        )
    }

    /// Ends ``module``'s deployment: the new version fails with ``reason`` and the
    /// traffic goes back. Returns the deployment.
    #[pyo3(signature = (module, reason=""))]
    fn abort(&self, py: Python<'_>, module: String, reason: &str) -> PyResult<Py<PyAny>> {
        let reason = reason.to_owned();
        self.run(
            py,
            |b| b.control(module, Control::Abort(reason)),
            |s| model::status_value(&s),
        )
    }

    /// Gives the new version of ``module``'s A/B test ``percent`` percent of the routing
    /// keys (1 to 99). Returns the deployment.
    fn set_split(&self, py: Python<'_>, module: String, percent: u32) -> PyResult<Py<PyAny>> {
        self.run(
            py,
            |b| b.control(module, Control::Split(percent)),
            |s| model::status_value(&s),
        )
    }

    /// ``module``'s deployment now, as a dict: ``module``, ``active`` (the active
    /// version), ``rollout`` (the deployment in progress, or ``None``: ``version``,
    /// ``from``, ``strategy``, ``phase``, ``percent``, ``paused``, ``verdict``,
    /// ``health``, ...), ``traffic`` (``[{"version", "percent", "shadow"}]``). Raises
    /// ``ModuleNotFound``, or ``DeploymentError`` for an in-process module.
    fn deployment(&self, py: Python<'_>, module: String) -> PyResult<Py<PyAny>> {
        self.run(py, |b| b.deployment(module), |s| model::status_value(&s))
    }

    /// Every module's deployment, sorted by module (see :meth:`deployment`).
    fn deployments(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run(py, Backend::deployments, |v| {
            array(v.iter().map(model::status_value))
        })
    }

    /// ``module``'s versions in the order they were staged, as dicts: ``version``,
    /// ``state`` (active, superseded, rolled-back, failed, ...), ``by``, ``why``,
    /// ``strategy``, the times (``staged_at_ms``, ``activated_at_ms``, ...),
    /// ``health``, ``summary``, ``retained``.
    fn history(&self, py: Python<'_>, module: String) -> PyResult<Py<PyAny>> {
        self.run(
            py,
            |b| b.history(module),
            |v| array(v.iter().map(model::version_value)),
        )
    }

    /// The events of ``modules`` (all when ``None``) from now on, as an
    /// :class:`EventStream` of dicts. With ``timeout`` (seconds), iteration ends after
    /// that long without an event.
    #[pyo3(signature = (modules=None, *, timeout=None))]
    fn events(
        &self,
        py: Python<'_>,
        modules: Option<Vec<String>>,
        timeout: Option<f64>,
    ) -> PyResult<EventStream> {
        let timeout = timeout.map(|t| seconds_arg("timeout", t)).transpose()?;
        let backend = self.backend().map_err(|f| f.into_pyerr(py))?;
        let (rx, task) = wait_spawned(py, backend.watch(modules.unwrap_or_default()))?
            .map_err(|f| f.into_pyerr(py))?;
        Ok(EventStream::new(rx, task, timeout))
    }

    /// Closes this handle. For a :class:`Runtime`: stops taking calls, lets calls in
    /// flight finish (up to its drain timeout), and stops every worker; returns when
    /// they are gone. For a :class:`Client`: the host serves on. Closing twice does
    /// nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if !self.mark_closed() {
            return Ok(());
        }
        wait_spawned(py, self.backend.clone().shutdown())?.map_err(|f| f.into_pyerr(py))
    }

    /// :meth:`close` as an awaitable.
    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        let first = self.mark_closed();
        into_asyncio(
            py,
            async move {
                if first {
                    backend.shutdown().await?;
                }
                Ok(())
            },
            |py, ()| Ok(py.None()),
        )
    }

    /// Whether :meth:`close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let me: Py<PyAny> = slf.into_any().unbind();
        into_asyncio(py, async move { Ok(me) }, |_py, me| Ok(me))
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let backend = self.backend.clone();
        let first = self.mark_closed();
        into_asyncio(
            py,
            async move {
                if first {
                    backend.shutdown().await?;
                }
                Ok(())
            },
            |py, ()| Ok(false.into_pyobject(py)?.to_owned().into_any().unbind()),
        )
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        // Dropped without close(): stop the workers in the background rather than block
        // whatever thread the garbage collector runs on.
        if let (Backend::Embedded(rt), false) = (&self.backend, *self.closed.get_mut()) {
            let rt = rt.clone();
            crate::bridge::runtime().spawn(async move { rt.shutdown().await });
        }
    }
}

/// The result of a call and who served it.
#[pyclass(frozen, module = "polyglot")]
pub struct Reply {
    /// The result.
    #[pyo3(get)]
    value: Py<PyAny>,
    /// The implementation that served the call: the module, a fallback module, or
    /// ``"module (fallback file)"``.
    #[pyo3(get)]
    served_by: String,
    /// That implementation's version.
    #[pyo3(get)]
    version: String,
    /// Whether a fallback served the call.
    #[pyo3(get)]
    fallback: bool,
    /// The worker instance that ran it.
    #[pyo3(get)]
    instance: u64,
    /// Seconds the method took, as the worker measured it (``None``: not reported).
    #[pyo3(get)]
    execution_time: Option<f64>,
}

impl Reply {
    fn new(py: Python<'_>, r: ReplyData) -> PyResult<Reply> {
        Ok(Reply {
            value: to_python(py, &r.value)?.unbind(),
            served_by: r.served_by,
            version: r.version,
            fallback: r.fallback,
            instance: r.instance,
            execution_time: r.execution_time.map(|d| d.as_secs_f64()),
        })
    }
}

#[pymethods]
impl Reply {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let value = self.value.bind(py).repr()?;
        let mut value = value.to_str()?.to_owned();
        if value.chars().count() > 80 {
            value = format!("{}...", value.chars().take(77).collect::<String>());
        }
        Ok(format!(
            "Reply(value={value}, served_by={:?}, version={:?}, fallback={}, instance={})",
            self.served_by,
            self.version,
            if self.fallback { "True" } else { "False" },
            self.instance
        ))
    }
}
