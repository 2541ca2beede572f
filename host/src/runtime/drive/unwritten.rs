//! A start run before its row is written. A run of a new workflow (`reprise run`, the API's
//! run) with a generated id, no queue and no delay runs its code at once; its row is written
//! when the code first reaches out of the guest (a step, a sleep, a message, a child, a recorded
//! clock or random value) or, when it never does, together with its ending: one commit for a
//! workflow that makes no durable call, where a written start and its ending make two.
//!
//! Nobody can tell the difference. The id is new and known only to the caller, who hears of
//! it only after the ending's commit; workflow code does nothing outside the guest before its
//! first durable call, and that call waits for the row; a crash before the row leaves nothing
//! behind and the caller without an answer, as a crash before a written start's commit does.

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::runtime::shared::Shared;
use reprise_store::{NewWorkflow, StoreError, WorkflowEnd, WorkflowRecord};

/// A new workflow running before its row is written.
pub(crate) struct Unwritten {
    new: NewWorkflow,
    /// When it started: its row's creation and first execution, whenever it is written.
    at: i64,
    written: OnceCell<()>,
}

impl Unwritten {
    pub(crate) fn new(new: NewWorkflow, at: i64) -> Arc<Self> {
        Arc::new(Unwritten {
            new,
            at,
            written: OnceCell::new(),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.new.id
    }

    /// The row it runs on, exactly as it will be written.
    pub(crate) fn record(&self) -> WorkflowRecord {
        self.new.record_at(self.at)
    }

    /// Whether its row is written: from then on it is driven as any other workflow.
    pub(crate) fn is_written(&self) -> bool {
        self.written.initialized()
    }

    /// Writes its row unless it is written: before the workflow reaches out of the guest, and
    /// before anything else reads or writes it.
    pub(crate) async fn write(&self, shared: &Shared) -> Result<(), StoreError> {
        self.written
            .get_or_try_init(|| async {
                let inserted = shared
                    .store
                    .insert_workflow_at(&self.new, self.at, None)
                    .await?;
                self.created(shared, inserted.created)
            })
            .await
            .map(|_| ())
    }

    /// Writes its row already ended with `end`, in one commit, when it was not written yet:
    /// `None` when it was, and the workflow ends as any other does.
    pub(crate) async fn write_ended(
        &self,
        shared: &Shared,
        end: &WorkflowEnd,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        if self.is_written() {
            return Ok(None);
        }
        let inserted = shared
            .store
            .insert_workflow_at(&self.new, self.at, Some(end))
            .await?;
        self.created(shared, inserted.created)?;
        // Only its drive writes it, and the drive has ended: nothing else can write it now.
        let _ = self.written.set(());
        Ok(Some(inserted.record))
    }

    /// Counts the start once its row exists; a generated id that was taken is refused (the
    /// row is someone else's and stays as it is).
    fn created(&self, shared: &Shared, created: bool) -> Result<(), StoreError> {
        if !created {
            return Err(StoreError::WorkflowExists(self.new.id.clone()));
        }
        shared.metrics.workflow_started();
        Ok(())
    }
}
