//! Which failures are worth another try, and how long to wait before it. A request that failed
//! on the way (no connection, a dropped one, a timeout, a proxy's 502, a server's 503 while it
//! restarts) may or may not have been acted on; the client retries only requests that are safe
//! to repeat: reads, cancels, and starts, which always carry a workflow id, so a repeat joins
//! what the first one stored.

use std::time::Duration;

use crate::ClientError;
use crate::ids::fresh_random;

/// How the client retries requests that failed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries of one start, status or cancel before its error is returned (1: no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest wait between tries. A wait for a result retries at this pace until the
    /// workflow ends, however long its server is away.
    pub max_backoff: Duration,
    /// A start, status or cancel unanswered this long has failed on the way (a server that
    /// took the connection and hung). Waits for results are long polls with a bound of their
    /// own.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Growing waits between tries, with a little jitter so clients cut off together do not all
/// come back in the same instant.
pub(crate) struct Backoff {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(policy: &RetryPolicy) -> Backoff {
        Backoff {
            next: policy.initial_backoff,
            initial: policy.initial_backoff,
            max: policy.max_backoff.max(policy.initial_backoff),
        }
    }

    /// Sleeps for the current wait and doubles the next one, up to the maximum.
    pub(crate) async fn wait(&mut self) {
        let quarter = u64::try_from(self.next.as_millis() / 4).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(fresh_random() % quarter.saturating_add(1));
        tokio::time::sleep(self.next + jitter).await;
        self.next = (self.next * 2).min(self.max);
    }

    /// Back to the first wait, after an answer.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Whether a failure may pass if the same request is sent again: the server could not be
/// reached, the connection broke or timed out before a whole answer, or something between
/// answered that the server is (for now) unavailable.
pub(crate) fn is_transient(err: &ClientError) -> bool {
    match err {
        ClientError::Http(err) => {
            err.is_connect() || err.is_timeout() || err.is_request() || err.is_body()
        }
        ClientError::Api { status, .. } => matches!(status, 502..=504),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> ClientError {
        ClientError::Api {
            status,
            message: String::new(),
        }
    }

    #[test]
    fn unavailable_servers_are_transient_refusals_are_not() {
        for status in [502, 503, 504] {
            assert!(is_transient(&api(status)), "{status}");
        }
        for status in [400, 401, 404, 409, 413, 500, 507] {
            assert!(!is_transient(&api(status)), "{status}");
        }
        let invalid = ClientError::InvalidId(crate::ids::InvalidId::Empty);
        assert!(!is_transient(&invalid));
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let err = reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .expect_err("nothing listens");
        assert!(is_transient(&ClientError::Http(err)));
    }

    #[tokio::test]
    async fn waits_double_up_to_the_maximum_then_start_over() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(70),
            ..RetryPolicy::default()
        };
        let mut backoff = Backoff::new(&policy);
        let mut waited = Vec::new();
        for _ in 0..4 {
            let before = std::time::Instant::now();
            backoff.wait().await;
            waited.push(before.elapsed().as_millis());
        }
        // Each wait is its step plus up to a quarter of jitter (and a timer's lateness).
        let steps = [20, 40, 70, 70];
        for (got, step) in waited.iter().zip(steps) {
            assert!(*got >= step && *got <= step + step / 4 + 40, "{waited:?}");
        }
        backoff.reset();
        let before = std::time::Instant::now();
        backoff.wait().await;
        assert!(
            before.elapsed().as_millis() < 20 + 5 + 40,
            "{:?}",
            before.elapsed()
        );
    }
}
