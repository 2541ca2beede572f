//! Queue notifications, coalesced: an enqueue or a freed slot tells every host's dispatchers
//! of its queue with a `NOTIFY`, but never more than one on its way per queue.

use std::collections::HashMap;

use sqlx::Postgres;
use sqlx::postgres::PgConnection;

use crate::Change;
use crate::waits_sql::Waits;

/// Tells every host's dispatchers of `queue` that it has work or a free slot, after the
/// commit that made it so. Only a hint (their poll finds it too), so a failure is logged,
/// never the write's error: the write committed.
pub(super) async fn tell_queue(bells: &Bells, conn: &mut PgConnection, queue: &str) {
    if !bells.start(queue) {
        return;
    }
    let change = Change::Queued {
        queue: queue.to_string(),
    };
    loop {
        if let Err(err) = Postgres::announce(conn, &change).await {
            tracing::debug!(queue, "cannot notify the queue's dispatchers: {err}");
        }
        if !bells.again(queue) {
            return;
        }
    }
}

/// Coalesces the notifications of enqueues and freed slots. Postgres serialises every
/// committing `NOTIFY` on one lock held through its commit's flush, so one per enqueue capped a
/// database at one enqueue per fsync (750 one-step workflows/s here). While a queue's
/// `NOTIFY` is on its way, further requests only ask for one more after it: a dispatcher woken
/// by that one claims everything committed before it, so no wake-up is lost.
#[derive(Debug, Default)]
pub(super) struct Bells(std::sync::Mutex<HashMap<String, bool>>);

impl Bells {
    /// Whether the caller rings now: no one is ringing for `queue` (else one more is asked).
    fn start(&self, queue: &str) -> bool {
        let mut ringing = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match ringing.get_mut(queue) {
            Some(again) => {
                *again = true;
                false
            }
            None => {
                ringing.insert(queue.to_string(), false);
                true
            }
        }
    }

    /// After a ring: whether to ring once more, because someone asked meanwhile.
    fn again(&self, queue: &str) -> bool {
        let mut ringing = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match ringing.get_mut(queue) {
            Some(again) if *again => {
                *again = false;
                true
            }
            _ => {
                ringing.remove(queue);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bells;

    #[test]
    fn queue_notifications_coalesce_without_losing_the_last() {
        let bells = Bells::default();
        assert!(bells.start("q"), "the first rings");
        assert!(!bells.start("q"), "a second while it rings waits");
        assert!(!bells.start("q"), "so does a third");
        assert!(bells.again("q"), "one more ring covers both");
        assert!(!bells.again("q"), "then no one is left waiting");
        assert!(bells.start("q"), "and the next rings at once");
        assert!(bells.start("other"), "queues ring apart");
    }
}
