//! `polyglot.Runtime`: the polyglot runtime in the Python process, with the native
//! builtins registered, loading a modules directory.

use std::path::PathBuf;

use polyglot_core::{DeploymentConfig, RuntimeConfig};
use pyo3::exceptions::PyRuntimeWarning;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::api::{seconds_arg, Api};
use crate::backend::Backend;
use crate::bridge::{runtime, wait};
use crate::errors::Failure;

/// What loading a directory gave: the modules ready, and the problems, as text.
struct Loaded {
    ready: Vec<String>,
    errors: Vec<String>,
}

/// Loads `dir` into `rt` in a task on the tokio runtime. Interrupted (Ctrl-C), the load
/// finishes in the background and, when `abandon` is set, the runtime is then shut down:
/// nothing is left running for a runtime the caller never got.
fn load(
    py: Python<'_>,
    rt: &polyglot_core::Runtime,
    dir: PathBuf,
    abandon: bool,
) -> PyResult<Loaded> {
    let task = {
        let rt = rt.clone();
        runtime().spawn(async move {
            let report = rt.load_dir(&dir).await;
            Loaded {
                ready: report.ready,
                errors: report
                    .errors
                    .iter()
                    .map(|e| polyglot_core::error_chain(e))
                    .collect(),
            }
        })
    };
    let mut task = task;
    match wait(py, &mut task) {
        Ok(Ok(loaded)) => Ok(loaded),
        Ok(Err(e)) => Err(Failure::from_join(e).into_pyerr(py)),
        Err(interrupted) => {
            if abandon {
                let rt = rt.clone();
                runtime().spawn(async move {
                    let _ = task.await;
                    rt.shutdown().await;
                });
            }
            Err(interrupted)
        }
    }
}

/// The polyglot runtime, in this process.
///
/// ``Runtime(modules_dir)`` loads every module folder under ``modules_dir`` (each with a
/// ``module.json``): builds what needs building, starts the workers, and returns once
/// they answered their first health check. A module that fails to load does not stop
/// the others: its problem is in :attr:`load_errors` and is issued as a
/// ``RuntimeWarning`` (``strict=True`` raises ``LoadError`` instead).
///
/// ``builtins=True`` registers the native handlers ``crypto``, ``compress``, ``text``
/// and ``dsp``: a module whose manifest says ``"builtin": "crypto"`` is served in this
/// process, with no worker. ``drain_timeout`` (seconds) bounds how long calls in flight
/// may take to finish on :meth:`close` and reload. ``state_file`` keeps the active
/// versions and their history across restarts.
///
/// Use it as a context manager, ``with polyglot.Runtime("modules") as rt:``, or call
/// :meth:`close`: both stop every worker. The runtime runs on its own threads (a tokio
/// runtime shared by every ``Runtime`` and ``Client`` of the process).
#[pyclass(extends = Api, frozen, module = "polyglot")]
pub struct Runtime {
    load_errors: std::sync::Mutex<Vec<String>>,
}

#[pymethods]
impl Runtime {
    #[new]
    #[pyo3(signature = (
        modules_dir=None, *, builtins=true, strict=false, drain_timeout=30.0, state_file=None
    ))]
    fn new(
        py: Python<'_>,
        modules_dir: Option<PathBuf>,
        builtins: bool,
        strict: bool,
        drain_timeout: f64,
        state_file: Option<PathBuf>,
    ) -> PyResult<PyClassInitializer<Runtime>> {
        let config = RuntimeConfig {
            drain_timeout: seconds_arg("drain_timeout", drain_timeout)?,
        };
        let mut deployments = DeploymentConfig::default();
        if let Some(f) = state_file {
            deployments = deployments.with_state_file(f);
        }
        let rt = {
            let _in_tokio = runtime().enter();
            polyglot_core::Runtime::with_deployments(config, deployments)
        };
        if builtins {
            polyglot_core::register_builtins(&rt);
        }
        let mut errors = Vec::new();
        if let Some(dir) = modules_dir {
            let loaded = load(py, &rt, dir, true)?;
            if strict && !loaded.errors.is_empty() {
                let shut = rt.clone();
                let _ = crate::bridge::wait_spawned(py, async move {
                    shut.shutdown().await;
                    Ok::<_, Failure>(())
                });
                return Err(load_failure(&loaded.errors).into_pyerr(py));
            }
            warn(py, &loaded.errors)?;
            errors = loaded.errors;
        }
        Ok(
            PyClassInitializer::from(Api::new(Backend::Embedded(rt))).add_subclass(Runtime {
                load_errors: std::sync::Mutex::new(errors),
            }),
        )
    }

    /// The problems of every load so far, as text: bad manifests, failed builds,
    /// workers that did not start (their modules' calls fall back until they recover).
    #[getter]
    fn load_errors(&self) -> Vec<String> {
        self.load_errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Loads every module folder under ``modules_dir`` in addition to those loaded
    /// already; returns ``{"ready": [...], "errors": [...]}``. A name already loaded is
    /// an error for that folder.
    fn load<'py>(slf: &Bound<'py, Self>, modules_dir: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let py = slf.py();
        let api = slf.as_super().get();
        if api.closed_now() {
            return Err(Failure::new("shutting_down", "this runtime is closed").into_pyerr(py));
        }
        let rt = api.embedded().expect("a Runtime is embedded").clone();
        let loaded = load(py, &rt, modules_dir, false)?;
        warn(py, &loaded.errors)?;
        if let Ok(mut all) = slf.get().load_errors.lock() {
            all.extend(loaded.errors.iter().cloned());
        }
        let d = PyDict::new(py);
        d.set_item("ready", loaded.ready)?;
        d.set_item("errors", loaded.errors)?;
        Ok(d)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let api = slf.as_super().get();
        let n = api.embedded().map_or(0, |rt| rt.modules().len());
        let state = if api.closed_now() { "closed" } else { "open" };
        format!("<polyglot.Runtime {state}, {n} modules>")
    }
}

fn load_failure(errors: &[String]) -> Failure {
    let list = polyglot_core::Value::Array(
        errors
            .iter()
            .map(|e| polyglot_core::Value::from(e.as_str()))
            .collect(),
    );
    Failure::new(
        "load_failed",
        format!(
            "{} module folder(s) failed to load:\n  {}",
            errors.len(),
            errors.join("\n  ")
        ),
    )
    .with("errors", list)
}

fn warn(py: Python<'_>, errors: &[String]) -> PyResult<()> {
    for e in errors {
        let message = std::ffi::CString::new(format!("polyglot: {e}").replace('\0', " "))
            .expect("no NUL left in the message");
        PyErr::warn(py, &py.get_type::<PyRuntimeWarning>(), &message, 2)?;
    }
    Ok(())
}
