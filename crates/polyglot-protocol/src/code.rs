//! The error codes of `docs/protocol.md`, section 6.

/// The worker does not serve this method.
pub const METHOD_NOT_FOUND: &str = "METHOD_NOT_FOUND";
/// The params do not fit the method.
pub const INVALID_PARAMS: &str = "INVALID_PARAMS";
/// The request is not a valid envelope.
pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
/// The method failed unexpectedly (an exception, a panic).
pub const INTERNAL: &str = "INTERNAL";
/// The call was cancelled with `$cancel`.
pub const CANCELLED: &str = "CANCELLED";
/// The message would exceed the frame size limit.
pub const FRAME_TOO_LARGE: &str = "FRAME_TOO_LARGE";
/// The worker got `$shutdown` and takes no new calls.
pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
/// `$health`: the worker is running but unhealthy.
pub const UNHEALTHY: &str = "UNHEALTHY";
/// This implementation announces the method but does not serve it (a fallback that
/// implements part of a module): the host passes the call on to the next implementation
/// of the module's fallback chain.
pub const NOT_SUPPORTED: &str = "NOT_SUPPORTED";
