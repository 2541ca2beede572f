//! Parking: a workflow that waits (a durable sleep, a child's end, a message, an event) gives back its instance and
//! keeps only its id and what wakes it. When the wait ends it runs again by replay, which the
//! guest cannot tell from having waited in place. So many waiting workflows cost memory for
//! their ids, not for their instances, and the pool stays free for workflows that run.
//!
//! Short waits keep the instance: parking costs a read of the history and a replay, which a
//! wait of a few milliseconds would not repay.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::events::RuntimeEvent;
use crate::runtime::shared::Shared;
use crate::runtime::waiting::wake::Wake;
use reprise_store::{Change, now_ms};

/// Waits longer than this give back the instance. Measured with `reprise bench`: parking and
/// waking a workflow costs well under a millisecond plus its replay, so a wait of 50 ms is
/// already a thousand times dearer in held memory than in the replay it saves.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(50);

/// The longest a parked wait for a child goes without reading the child's status: a child
/// that ends in another process wakes no one here.
const MAX_CHILD_POLL: Duration = Duration::from_secs(2);

/// Whether a durable sleep with `remaining_ms` left gives back its instance.
pub(crate) fn sleep_parks(remaining_ms: u64) -> bool {
    remaining_ms > PARK_AFTER.as_millis() as u64
}

/// A parked workflow: its id, what wakes it, and the token a cancel reaches it by.
pub(crate) struct Parking {
    pub(crate) id: String,
    pub(crate) wake: Wake,
    pub(crate) cancel: CancellationToken,
    /// The workflow's deadline: reaching it ends the wait, and the drive then cancels it.
    pub(crate) deadline: Option<i64>,
    /// The ownership epoch of the parked execution, which goes on under it.
    pub(crate) epoch: u64,
}

impl Parking {
    /// Waits until the wake condition holds or the workflow is cancelled, counted as parked
    /// meanwhile, then unregisters it; returns its id and epoch, to resume it by. The resumed
    /// execution finds out from the database which it was.
    pub(crate) async fn wait(self, shared: &Arc<Shared>) -> (String, u64) {
        shared.slots.parked.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = self.wake_condition(shared) => {}
            _ = self.cancel.cancelled() => {}
            _ = crate::runtime::drive::deadline::reached(self.deadline) => {}
        }
        shared.slots.parked.fetch_sub(1, Ordering::Relaxed);
        shared.running.unregister(&self.id);
        shared.events.emit(|| RuntimeEvent::Unparked {
            workflow_id: self.id.clone(),
        });
        (self.id, self.epoch)
    }

    /// What the workflow waits for. Every kind but a sleep waits in a future of its own on the
    /// heap: the parked task holds only what its own wait needs, not the largest of them all
    /// (1,520 bytes per parked workflow when they were inline).
    async fn wake_condition(&self, shared: &Shared) {
        match &self.wake {
            Wake::At(ms) => sleep_until_ms(*ms).await,
            Wake::Message { topic, deadline } => {
                Box::pin(self.message(shared, topic, *deadline)).await;
            }
            Wake::Event {
                workflow_id,
                key,
                deadline,
            } => Box::pin(event(shared, workflow_id, key, *deadline)).await,
            Wake::StepSlot { instance, step } => {
                // A limit taken out of the config since: nothing to wait for.
                if let Some(limited) = shared.step_limited(instance, step, &self.id, self.epoch) {
                    Box::pin(limited.until_free()).await;
                }
            }
            Wake::Child(child) => {
                // However it comes out (ended, unknown, unreadable), the resumed execution's
                // own wait sees which and says so.
                let _ = Box::pin(shared.wait_for_child(child, MAX_CHILD_POLL)).await;
            }
        }
    }

    /// A message on this workflow's `topic`, or the recv's `deadline`.
    async fn message(&self, shared: &Shared, topic: &str, deadline: u64) {
        let change = Change::Message {
            workflow_id: self.id.clone(),
            topic: topic.to_owned(),
        };
        let there = async { !matches!(shared.store.has_message(&self.id, topic).await, Ok(false)) };
        change_or_deadline(shared, change, there, deadline).await;
    }
}

/// Another workflow's event `key`, or the get-event's `deadline`.
async fn event(shared: &Shared, workflow_id: &str, key: &str, deadline: u64) {
    let change = Change::Event {
        workflow_id: workflow_id.to_owned(),
        key: key.to_owned(),
    };
    let there = async { !matches!(shared.store.get_event(workflow_id, key).await, Ok(None)) };
    change_or_deadline(shared, change, there, deadline).await;
}

/// Waits for `change` until `deadline`, unless `there` says it is there already (or could not
/// tell). `there` is read after the wait is registered, so a write in between still wakes it.
async fn change_or_deadline(
    shared: &Shared,
    change: Change,
    there: impl std::future::Future<Output = bool>,
    deadline: u64,
) {
    let changed = shared.signals.register(&change, &shared.store);
    if there.await {
        return;
    }
    tokio::select! {
        _ = changed => {}
        _ = sleep_until_ms(deadline) => {}
    }
}

/// Sleeps until `ms` since the epoch (at once if it passed).
pub(crate) async fn sleep_until_ms(ms: u64) {
    let remaining = ms.saturating_sub(now_ms() as u64);
    tokio::time::sleep(Duration::from_millis(remaining)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_waits_longer_than_the_threshold_park() {
        assert!(!sleep_parks(0));
        assert!(!sleep_parks(PARK_AFTER.as_millis() as u64));
        assert!(sleep_parks(PARK_AFTER.as_millis() as u64 + 1));
        assert!(sleep_parks(u64::MAX));
    }
}
