//! Delayed starts: a workflow started with a delay (or a start time) and no queue stays
//! ENQUEUED until its time, then one process starts it — the claim is atomic across processes
//! sharing the database. (On a queue, the queue's dispatcher waits for the time instead.)

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::runtime::Runtime;
use crate::runtime::drive::{self, Begin};
use crate::runtime::error::RuntimeError;
use crate::runtime::shared::Shared;
use reprise_store::{WorkflowRecord, now_ms};

/// How often the starter looks for delayed workflows created by other processes.
const POLL: Duration = Duration::from_millis(100);
/// Most workflows one claim starts.
const BATCH: u32 = 64;

/// Starts this runtime's share of delayed workflows as they come due, until `stop`. It reads
/// when the next one is due and claims (a write) only when one is: an idle host polls with a
/// read, and its writer stays idle.
pub(crate) async fn start_due(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let next = match shared.store.next_due().await {
            Ok(next) => next,
            Err(err) => {
                tracing::warn!("cannot look for delayed workflows: {err}");
                None
            }
        };
        let mut wait = next.map_or(POLL, |at| {
            Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(POLL)
        });
        if wait.is_zero() {
            match shared
                .store
                .claim_due(&shared.options.executor_id, BATCH, None)
                .await
            {
                Ok(claimed) if !claimed.is_empty() => {
                    for record in claimed {
                        drive::spawn(&shared, Begin::Created(Box::new(record)));
                    }
                    // More may be due: look again at once.
                    continue;
                }
                // Another process took them (or their time moved): look again after a poll.
                Ok(_) => wait = POLL,
                Err(err) => {
                    tracing::warn!("cannot start delayed workflows: {err}");
                    wait = POLL;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = shared.due.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Runtime {
    /// Waits until a delayed workflow is due, starts it here unless another process did, and
    /// waits for its end.
    pub async fn run_when_due(&self, id: &str) -> Result<WorkflowRecord, RuntimeError> {
        let workflow = self.shared.workflow(id).await?;
        if let Some(at) = workflow.not_before {
            let remaining = u64::try_from(at - now_ms()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(remaining)).await;
        }
        let store = &self.shared.store;
        let executor = &self.shared.options.executor_id;
        match store.claim_due(executor, 1, Some(id)).await?.pop() {
            Some(record) => drive::drive(&self.shared, Begin::Created(Box::new(record))).await,
            None => match self.shared.wait(id, None).await? {
                Some(record) => Ok(record),
                None => Err(RuntimeError::UnknownWorkflowId(id.to_string())),
            },
        }
    }
}
