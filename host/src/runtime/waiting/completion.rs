//! Who waits for which workflow to end. A waiter registers before it reads the workflow's
//! status, so a completion that lands in between still wakes it; completions in other
//! processes are noticed by polling at [`POLL_INTERVAL`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::runtime::waiting::signals::Waiters;
use reprise_store::WorkflowRecord;

/// How often a waiter re-reads the database for workflows finished by other processes.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Waiters by workflow id.
#[derive(Default)]
pub(crate) struct Completions {
    waiters: Waiters<String>,
}

impl Completions {
    /// A future that resolves when `complete(id)` is called (or the registry is dropped).
    /// Dropped without having been woken (the workflow had already ended, the wait timed out),
    /// it takes its place in the registry with it.
    pub(crate) fn register(&self, id: &str) -> Registration<'_> {
        let key = id.to_string();
        Registration {
            receiver: self.waiters.register(&key),
            key,
            waiters: &self.waiters,
        }
    }

    /// Wakes everyone waiting for `id`.
    pub(crate) fn complete(&self, id: &str) {
        self.waiters.wake(&id.to_string());
    }

    /// Whether anyone waits for a workflow's end.
    pub(crate) fn any(&self) -> bool {
        !self.waiters.is_idle()
    }
}

/// One waiter's place in [`Completions`], resolved by the workflow's completion.
pub(crate) struct Registration<'a> {
    receiver: oneshot::Receiver<()>,
    key: String,
    waiters: &'a Waiters<String>,
}

impl Future for Registration<'_> {
    type Output = Result<(), oneshot::error::RecvError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver).poll(cx)
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.receiver.close();
        self.waiters.forget_closed(&self.key);
    }
}

/// How a wait for a workflow's end came out.
pub(crate) enum Waited {
    /// It reached a terminal status.
    Ended(Box<WorkflowRecord>),
    /// The timeout passed first.
    TimedOut,
    /// No workflow has that id.
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `GET /result` of an ended workflow registered a waiter that nothing ever woke:
    /// a few hundred bytes left behind per request.
    #[tokio::test]
    async fn a_wait_that_ends_without_a_completion_leaves_nothing_behind() {
        let completions = Completions::default();
        for i in 0..1000 {
            let waiter = completions.register(&format!("ended-{i}"));
            drop(waiter);
        }
        assert_eq!(completions.waiters.keys(), 0);
        let woken = completions.register("w");
        let other = completions.register("w");
        drop(other);
        assert_eq!(completions.waiters.keys(), 1, "a live waiter keeps its key");
        completions.complete("w");
        assert!(woken.await.is_ok(), "still woken");
        assert_eq!(completions.waiters.keys(), 0);
    }
}
