//! Moving a workflow to new code: its history is replayed on the new component with nothing
//! executed, and only when that is clean is its version switched — in one commit that also
//! takes its epoch, so an execution of the old code running anywhere stops at its next write,
//! and that fails if anything was recorded since the check.

use std::sync::Arc;

use serde::Serialize;

use super::{Verdict, dry_replay};
use crate::runtime::error::RuntimeError;
use crate::runtime::execution::instance::LoadedComponent;
use crate::runtime::shared::Shared;
use reprise_store::{StoreError, WorkflowRecord, WorkflowStatus};

/// How often a move is checked again when the workflow recorded more meanwhile.
const ATTEMPTS: u32 = 3;

/// The answer to a move.
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    /// The workflow's id.
    pub id: String,
    /// The version it ran on.
    pub from: String,
    /// The version asked for.
    pub to: String,
    /// Whether its version was switched (not on a dry run, nor when the check was not clean).
    pub upgraded: bool,
    /// What the replay on the new code found.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Moves workflow `id` to `component` (already stored) if its history replays cleanly on it;
/// with `dry_run`, only says whether it would.
pub(crate) async fn upgrade(
    shared: &Arc<Shared>,
    id: &str,
    component: &LoadedComponent,
    dry_run: bool,
) -> Result<Moved, RuntimeError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let workflow = shared.workflow(id).await?;
        if !matches!(
            workflow.status,
            WorkflowStatus::Pending | WorkflowStatus::Enqueued
        ) {
            return Err(StoreError::NotResumable {
                workflow_id: workflow.id,
                status: workflow.status,
            }
            .into());
        }
        let steps = shared.store.steps(id).await?;
        let at = steps.last().map_or(0, |last| last.function_id + 1);
        let limits = shared.limits(&workflow);
        let replay = dry_replay(&shared.engine, component, &workflow, steps, limits).await?;
        let moved = |upgraded, workflow: &WorkflowRecord| Moved {
            id: workflow.id.clone(),
            from: workflow.app_version.clone(),
            to: component.digest.clone(),
            upgraded,
            verdict: replay.verdict.clone(),
        };
        if dry_run || !replay.verdict.is_clean() || workflow.app_version == component.digest {
            return Ok(moved(false, &workflow));
        }
        match shared
            .store
            .upgrade_workflow(id, workflow.epoch, at, &component.digest)
            .await
        {
            Ok(_) => {
                tracing::info!(workflow_id = %id, from = %workflow.app_version, to = %component.digest, at, "workflow moved to new code");
                return Ok(moved(true, &workflow));
            }
            Err(StoreError::ChangedWhileChecked(_)) if attempt < ATTEMPTS => continue,
            Err(err) => return Err(err.into()),
        }
    }
}
