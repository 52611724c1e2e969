//! Bounded waiting. Tests never sleep to wait for a condition; fixtures that must look at state with no event to
//! await (an HTTP view, a file) use [`poll_until`], which gives up after its timeout with a clear message.

use std::future::Future;
use std::time::Duration;

/// How often [`poll_until`] looks again. Short, because it only ever bounds latency, never correctness.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// Calls `check` until it returns `Ok`, at most for `timeout`; panics with `what` and the last observed state.
pub async fn poll_until<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    match poll_for(what, timeout, check).await {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// Like [`poll_until`], but returns the timeout as an `Err` (for tests that collect several failures).
pub async fn poll_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "timed out after {timeout:?} waiting for {what}; last seen: {last}"
                    ));
                }
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
