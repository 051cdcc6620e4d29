//! Small helpers around kube-rs calls: how to read an error, and retrying the ones that
//! may pass on their own (the client-go `retry.OnError` pattern).

use std::future::Future;
use std::time::Duration;

/// Attempts for a write that fails transiently before giving up.
const ATTEMPTS: u32 = 6;

fn api_status(e: &kube::Error) -> Option<&kube::core::Status> {
    match e {
        kube::Error::Api(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    api_status(e).is_some_and(|s| s.is_not_found())
}

pub(crate) fn is_already_exists(e: &kube::Error) -> bool {
    api_status(e).is_some_and(|s| s.is_already_exists() || s.code == 409 && s.reason.is_empty())
}

pub(crate) fn is_conflict(e: &kube::Error) -> bool {
    api_status(e).is_some_and(|s| s.is_conflict())
}

/// Worth trying again: the server was busy or broken, or the request never got an answer.
pub(crate) fn is_transient(e: &kube::Error) -> bool {
    match api_status(e) {
        Some(s) => s.code == 429 || s.code >= 500,
        None => !matches!(
            e,
            kube::Error::SerdeError(_) | kube::Error::BuildRequest(_) | kube::Error::Auth(_)
        ),
    }
}

/// Runs `f` until it succeeds, fails for good, or has failed transiently [`ATTEMPTS`]
/// times, backing off from 100 ms.
pub(crate) async fn retry<T, F, Fut>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => {
                tracing::debug!(error = %e, attempt, "transient API error; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            other => return other,
        }
    }
}
