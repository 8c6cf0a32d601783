//! [`offload`]: running a CPU-heavy method body off the async runtime, so a large input
//! does not stall the worker's protocol loop, or the host's runtime when the handler is
//! served in its process.

use crate::MethodError;

/// Runs `work` on tokio's blocking pool when `heavy` and a tokio runtime is running;
/// inline otherwise (small work costs less than the hand-off, tens of microseconds). A
/// panic in `work` is raised again here, where the serve loop (or the host) answers it
/// as any method's panic.
///
/// # Errors
/// When the blocking pool did not run the work (the runtime is shutting down).
pub async fn offload<T, F>(heavy: bool, work: F) -> Result<T, MethodError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !heavy {
        return Ok(work());
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => match runtime.spawn_blocking(work).await {
            Ok(out) => Ok(out),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(MethodError::internal(format!("the work was not run: {e}"))),
        },
        Err(_) => Ok(work()),
    }
}
