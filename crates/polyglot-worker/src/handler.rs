//! [`Handler`], what a worker serves, and [`Worker`], the builder that makes one from
//! async functions.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use polyglot_protocol::{Map, Value};

use crate::context::Context;
use crate::error::MethodError;

/// A boxed future, as [`Handler`] methods return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a method call produces.
pub type MethodResult = Result<Value, MethodError>;

/// A module's implementation: the methods it serves. Served out of process by
/// [`Worker::serve`], or mounted in-process by the host.
pub trait Handler: Send + Sync + 'static {
    /// The module name.
    fn module(&self) -> &str;
    /// The module version.
    fn version(&self) -> &str;
    /// The methods it serves (not the `$` ones), sorted.
    fn methods(&self) -> Vec<String>;
    /// How many calls it takes at once.
    fn max_concurrency(&self) -> u32;
    /// Runs one method. An unknown method is a `METHOD_NOT_FOUND` error.
    fn call(&self, method: &str, params: Value, ctx: Context) -> BoxFuture<MethodResult>;
    /// Answers `$health`: `{"status": "ok"}` plus whatever the module adds.
    fn health(&self) -> BoxFuture<MethodResult>;
}

type Method = Arc<dyn Fn(Value, Context) -> BoxFuture<MethodResult> + Send + Sync>;

/// A worker built from async functions, one per method.
///
/// ```no_run
/// use polyglot_worker::{Worker, MethodError, Value};
///
/// fn main() -> std::process::ExitCode {
///     Worker::new("echo-rust", "1.0.0")
///         .max_concurrency(64)
///         .method("echo", |params: Value, _ctx| async move { Ok(params) })
///         .method("upper", |params: Value, _ctx| async move {
///             let text = polyglot_worker::arg_str(&params, 0, "text")?;
///             Ok(Value::from(text.to_uppercase()))
///         })
///         .serve()
/// }
/// ```
#[derive(Clone)]
pub struct Worker {
    module: String,
    version: String,
    max_concurrency: u32,
    threads: usize,
    methods: HashMap<String, Method>,
    health: Option<Arc<dyn Fn() -> BoxFuture<MethodResult> + Send + Sync>>,
}

impl Worker {
    /// A worker for `module` at `version` with no methods yet.
    pub fn new(module: impl Into<String>, version: impl Into<String>) -> Worker {
        Worker {
            module: module.into(),
            version: version.into(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            threads: 1,
            methods: HashMap::new(),
            health: None,
        }
    }

    /// How many calls it takes at once (announced in the handshake; at least 1).
    pub fn max_concurrency(mut self, n: u32) -> Worker {
        self.max_concurrency = n.max(1);
        self
    }

    /// How many threads run methods. One (the default) is the fastest for methods that
    /// mostly wait or are quick; more for methods that compute.
    pub fn threads(mut self, n: usize) -> Worker {
        self.threads = n.max(1);
        self
    }

    /// Adds a method.
    pub fn method<F, Fut>(mut self, name: impl Into<String>, f: F) -> Worker
    where
        F: Fn(Value, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MethodResult> + Send + 'static,
    {
        self.methods
            .insert(name.into(), Arc::new(move |p, c| Box::pin(f(p, c))));
        self
    }

    /// Sets the health check: its `Ok` map is merged into `{"status": "ok"}`, an `Err`
    /// reports the worker unhealthy.
    pub fn health<F, Fut>(mut self, f: F) -> Worker
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = MethodResult> + Send + 'static,
    {
        self.health = Some(Arc::new(move || Box::pin(f())));
        self
    }

    pub(crate) fn thread_count(&self) -> usize {
        self.threads
    }
}

/// Announced when a worker does not say: enough for I/O-bound methods on one thread,
/// few enough that a burst cannot queue unbounded work inside the worker.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 64;

impl Handler for Worker {
    fn module(&self) -> &str {
        &self.module
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn methods(&self) -> Vec<String> {
        let mut m: Vec<String> = self.methods.keys().cloned().collect();
        m.sort();
        m
    }
    fn max_concurrency(&self) -> u32 {
        self.max_concurrency
    }
    fn call(&self, method: &str, params: Value, ctx: Context) -> BoxFuture<MethodResult> {
        match self.methods.get(method) {
            Some(m) => m(params, ctx),
            None => {
                let err = MethodError::new(
                    polyglot_protocol::code::METHOD_NOT_FOUND,
                    format!("module {:?} has no method {method:?}", self.module),
                );
                Box::pin(async move { Err(err) })
            }
        }
    }
    fn health(&self) -> BoxFuture<MethodResult> {
        let custom = self.health.as_ref().map(|h| h());
        Box::pin(async move {
            let mut status = Map::new();
            status.insert("status".into(), Value::from("ok"));
            if let Some(fut) = custom {
                if let Value::Map(extra) = fut.await? {
                    status.extend(extra);
                }
            }
            Ok(Value::Map(status))
        })
    }
}

/// The `index`-th positional argument as a string (params `["text"]`), or the named
/// argument `name` (params `{"text": ...}`), or the params themselves when they are a
/// string.
///
/// # Errors
/// `INVALID_PARAMS` naming the argument when it is missing or not a string.
pub fn arg_str<'a>(params: &'a Value, index: usize, name: &str) -> Result<&'a str, MethodError> {
    let v = arg(params, index, name)?;
    v.as_str().ok_or_else(|| {
        MethodError::invalid_params(format!("`{name}` must be a string, not {}", v.type_name()))
    })
}

/// The `index`-th positional argument, or the named argument `name`, or the params
/// themselves when they are neither an array nor an object and `index` is 0.
///
/// # Errors
/// `INVALID_PARAMS` naming the argument when it is missing.
pub fn arg<'a>(params: &'a Value, index: usize, name: &str) -> Result<&'a Value, MethodError> {
    let found = match params {
        Value::Array(a) => a.get(index),
        Value::Map(m) => m.get(name),
        Value::Null => None,
        other if index == 0 => Some(other),
        _ => None,
    };
    found.ok_or_else(|| MethodError::invalid_params(format!("missing argument `{name}`")))
}

/// Like [`arg`], but `None` when the argument is absent or `null`.
pub fn opt_arg<'a>(params: &'a Value, index: usize, name: &str) -> Option<&'a Value> {
    arg(params, index, name).ok().filter(|v| !v.is_null())
}
