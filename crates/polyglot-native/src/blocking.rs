//! Running CPU-heavy calls off the async runtime, so a 64 MB encryption does not stall
//! the worker's protocol loop, or the host's runtime when a handler is mounted
//! in-process.

use polyglot_worker::MethodError;

/// Inputs smaller than this are processed on the calling task. Up to 64 KiB every
/// operation here takes tens of microseconds, about what handing the work to tokio's
/// blocking pool and back costs; above it the work dominates and the hand-off is free.
pub(crate) const INLINE_LIMIT: usize = 64 * 1024;

/// Runs `work` on tokio's blocking pool when `size` (the input's bytes) reaches
/// [`INLINE_LIMIT`] and a tokio runtime is running; inline otherwise.
pub(crate) async fn run<T, F>(size: usize, work: F) -> Result<T, MethodError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if size < INLINE_LIMIT {
        return Ok(work());
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => match runtime.spawn_blocking(work).await {
            Ok(out) => Ok(out),
            // A panic in the work is re-raised here, where the serve loop turns it into
            // an `INTERNAL` answer like any other method's panic.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(MethodError::internal(format!("the work was not run: {e}"))),
        },
        Err(_) => Ok(work()),
    }
}
