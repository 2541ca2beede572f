//! Step limits (`[instances.X.steps.NAME] concurrency = 4, rate = "50/s"`): before a limited
//! step's body runs, its execution takes a slot in the database, so the limits hold across
//! every host on it; the slot is given back once the step's outcome is recorded (or the
//! execution ends without one). A workflow that finds no slot waits a moment in place, then
//! parks — it holds no instance while it waits — and is woken when a slot is given back here
//! or, for other hosts' slots and rate windows, when a poll finds one free.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use reprise_store::{RateLimit, StepSlotRequest, Store, StoreError};

/// How often a parked waiter asks the database whether a slot is free: other hosts' slots
/// and reopening rate windows wake no one here.
const POLL: Duration = Duration::from_millis(200);

/// Limits on one step of an instance's workflows, over every host on the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepLimit {
    /// Most executions of the step running at once (retries of one execution hold its slot).
    pub concurrency: Option<u32>,
    /// Most executions begun per window.
    pub rate: Option<RateLimit>,
}

/// Where a slot given back here wakes the waiters for it.
#[derive(Default)]
pub(crate) struct SlotBells {
    bells: Mutex<HashMap<(String, String), Arc<Notify>>>,
}

impl SlotBells {
    fn bell(&self, instance: &str, step: &str) -> Arc<Notify> {
        let mut bells = self.bells.lock().unwrap_or_else(PoisonError::into_inner);
        bells
            .entry((instance.to_owned(), step.to_owned()))
            .or_default()
            .clone()
    }
}

/// What taking a slot came to.
pub(crate) enum Taken {
    /// The step has no limit.
    Unlimited,
    /// A slot, given back when this is dropped.
    Slot(SlotGuard),
    /// None free now.
    Busy,
}

/// A slot held; dropping it gives the slot back (in the background) and wakes this host's
/// waiters for it.
pub(crate) struct SlotGuard {
    store: Arc<dyn Store>,
    slot: i64,
    bell: Arc<Notify>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let (store, slot, bell) = (self.store.clone(), self.slot, self.bell.clone());
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime (a shutdown): the slot stops counting when the workflow is recovered.
            return;
        };
        runtime.spawn(async move {
            if let Err(err) = store.release_step_slot(slot).await {
                tracing::warn!(
                    slot,
                    "cannot give a step slot back, it frees at recovery: {err}"
                );
            }
            bell.notify_waiters();
        });
    }
}

/// A step's limits, for one execution.
pub(crate) struct Limited<'a> {
    pub(crate) store: &'a Arc<dyn Store>,
    pub(crate) bells: &'a SlotBells,
    pub(crate) request: StepSlotRequest,
}

impl Limited<'_> {
    /// Takes a slot if one is free now.
    pub(crate) async fn take(&self) -> Result<Taken, StoreError> {
        Ok(match self.store.take_step_slot(&self.request).await? {
            Some(slot) => Taken::Slot(SlotGuard {
                store: self.store.clone(),
                slot,
                bell: self.bells.bell(&self.request.instance, &self.request.step),
            }),
            None => Taken::Busy,
        })
    }

    /// Returns when a slot may be free: one was given back here, or a poll of the database
    /// finds one (other hosts, rate windows). A failing read ends the wait: the take that
    /// follows says what is wrong.
    pub(crate) async fn until_free(&self) {
        let bell = self.bells.bell(&self.request.instance, &self.request.step);
        loop {
            let rung = bell.notified();
            if !matches!(self.store.step_slot_free(&self.request).await, Ok(false)) {
                return;
            }
            tokio::select! {
                _ = rung => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Waits at most `within` for a slot given back here.
    pub(crate) async fn rung_within(&self, within: Duration) {
        let bell = self.bells.bell(&self.request.instance, &self.request.step);
        let _ = tokio::time::timeout(within, bell.notified()).await;
    }
}
