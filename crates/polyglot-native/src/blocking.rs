//! Running CPU-heavy calls off the async runtime, so a 64 MB encryption does not stall
//! the worker's protocol loop, or the host's runtime when a handler is mounted
//! in-process.

use polyglot_worker::MethodError;

/// Inputs smaller than this are processed on the calling task. Up to 64 KiB every
/// operation here takes tens of microseconds, about what handing the work to tokio's
/// blocking pool and back costs; above it the work dominates and the hand-off is free.
pub(crate) const INLINE_LIMIT: usize = 64 * 1024;

/// [`INLINE_LIMIT`] for the operations that run at about 10 GB/s: AES-256-GCM and
/// BLAKE3 (on every core from 256 KiB). Up to 1 MiB they take about 100 µs, tokio's
/// upper guideline for work between two awaits. The hand-off to the blocking pool and
/// back costs 7 µs at best and 11 µs at the median (`block_on` awaiting
/// `spawn_blocking`, measured on the bench's 2-core machine): at 64 KiB it would be a
/// tenth of a 1 MB operation's time.
pub(crate) const FAST_INLINE_LIMIT: usize = 1 << 20;

/// Runs `work` on tokio's blocking pool when `size` (the input's bytes) reaches
/// [`INLINE_LIMIT`] and a tokio runtime is running; inline otherwise.
pub(crate) async fn run<T, F>(size: usize, work: F) -> Result<T, MethodError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    polyglot_worker::offload(size >= INLINE_LIMIT, work).await
}

/// [`run`] for the operations of [`FAST_INLINE_LIMIT`].
pub(crate) async fn run_fast<T, F>(size: usize, work: F) -> Result<T, MethodError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    polyglot_worker::offload(size >= FAST_INLINE_LIMIT, work).await
}

/// Buffers from this size are freed on tokio's blocking pool rather than by the call
/// that read them. Unmapping a 64 MB buffer takes 4-5 ms on the bench's VM, a third of
/// the time it takes to hash it; the caller's answer need not wait for it.
pub(crate) const FREE_LATER_LIMIT: usize = 8 << 20;

/// Drops `buf`, on tokio's blocking pool when it reaches [`FREE_LATER_LIMIT`] and a
/// tokio runtime is running, at once otherwise.
pub(crate) fn free<T: Send + 'static>(buf: Vec<T>) {
    if buf.capacity() * std::mem::size_of::<T>() < FREE_LATER_LIMIT {
        return;
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(move || drop(buf));
    }
}
