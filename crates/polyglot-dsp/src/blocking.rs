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
    polyglot_worker::offload(cost >= INLINE_WORK, work).await
}
