//! Running the heavier calls off the async runtime, so a long filter does not stall the
//! worker's protocol loop, or the host's runtime when the handler is mounted in-process.

use polyglot_worker::MethodError;

/// Calls estimated below this many multiply-adds run on the calling task. 100 000 take
/// tens of microseconds, about what handing the work to tokio's blocking pool and back
/// costs; above it the work dominates and the hand-off is cheap.
pub(crate) const INLINE_WORK: usize = 100_000;

/// Runs `work` on tokio's blocking pool when `cost` (its estimated multiply-adds)
/// reaches [`INLINE_WORK`] and a tokio runtime is running; inline otherwise.
pub(crate) async fn run<T, F>(cost: usize, work: F) -> Result<T, MethodError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if cost < INLINE_WORK {
        return Ok(work());
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => match runtime.spawn_blocking(work).await {
            Ok(out) => Ok(out),
            // A panic in the work is re-raised here, where the serve loop (or the host)
            // turns it into an `INTERNAL` answer like any other method's panic.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(MethodError::internal(format!("the work was not run: {e}"))),
        },
        Err(_) => Ok(work()),
    }
}
