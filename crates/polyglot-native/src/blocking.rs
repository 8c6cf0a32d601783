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
    polyglot_worker::offload(size >= INLINE_LIMIT, work).await
}
