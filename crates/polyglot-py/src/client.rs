//! `polyglot.Client` and `polyglot.connect`: the same interface as `Runtime`, against a
//! running `polyglot-host serve` over its gRPC API.

use std::path::PathBuf;

use pyo3::prelude::*;

use crate::api::{seconds_arg, Api};
use crate::backend::{Backend, Remote};
use crate::bridge::wait_spawned;

// `url`'s default in the signatures below is `polyglot-host serve`'s default address,
// written as a literal so that `help()` and type checkers see it.

/// A client of a running ``polyglot-host serve`` (its gRPC API), with the methods of
/// :class:`Runtime`. Made by :func:`connect`.
///
/// Params and results travel as MessagePack, so ``bytes`` stay ``bytes``. Errors are the
/// same classes as in a runtime in this process, read from the host's error details;
/// besides, ``ConnectionFailed`` when the host cannot be reached and ``AccessDenied``
/// when it refuses the API key. :meth:`close` only closes this handle: the host serves
/// on.
#[pyclass(extends = Api, frozen, module = "polyglot")]
pub struct Client {
    url: String,
}

impl Client {
    fn open(
        py: Python<'_>,
        url: String,
        api_key: Option<String>,
        tls_ca: Option<PathBuf>,
        timeout: f64,
    ) -> PyResult<PyClassInitializer<Client>> {
        let timeout = seconds_arg("timeout", timeout)?;
        let remote = wait_spawned(py, Remote::connect(url.clone(), api_key, tls_ca, timeout))?
            .map_err(|f| f.into_pyerr(py))?;
        Ok(
            PyClassInitializer::from(Api::new(Backend::Remote(Box::new(remote))))
                .add_subclass(Client { url }),
        )
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (url="http://127.0.0.1:50051", *, api_key=None, tls_ca=None, timeout=10.0))]
    fn new(
        py: Python<'_>,
        url: &str,
        api_key: Option<String>,
        tls_ca: Option<PathBuf>,
        timeout: f64,
    ) -> PyResult<PyClassInitializer<Client>> {
        Client::open(py, url.to_owned(), api_key, tls_ca, timeout)
    }

    /// The host's URL.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let state = if slf.as_super().get().closed_now() {
            "closed"
        } else {
            "open"
        };
        format!("<polyglot.Client {} {state}>", slf.get().url)
    }
}

/// Connects to a running ``polyglot-host serve`` at ``url`` and returns a
/// :class:`Client`, which has the methods of :class:`Runtime`.
///
/// ``api_key`` is sent as ``authorization: Bearer KEY`` (the host's ``--api-key``).
/// ``https://`` URLs use TLS, trusting the public roots and ``tls_ca`` (a PEM file) if
/// given. Raises ``ConnectionFailed`` when nothing answers within ``timeout`` seconds.
///
/// >>> client = polyglot.connect("http://127.0.0.1:50051")
/// >>> client.call("text-rust", "slugify", "Hello World")
/// 'hello-world'
#[pyfunction]
#[pyo3(signature = (url="http://127.0.0.1:50051", *, api_key=None, tls_ca=None, timeout=10.0))]
pub fn connect(
    py: Python<'_>,
    url: &str,
    api_key: Option<String>,
    tls_ca: Option<PathBuf>,
    timeout: f64,
) -> PyResult<Py<Client>> {
    let init = Client::open(py, url.to_owned(), api_key, tls_ca, timeout)?;
    Py::new(py, init)
}
