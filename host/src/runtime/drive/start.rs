//! Starts: the one place that decides whether a recorded start needs a drive here, and how
//! that drive begins.

use std::sync::Arc;

use crate::runtime::drive::{Begin, spawn};
use crate::runtime::error::RuntimeError;
use crate::runtime::execution::instance::LoadedComponent;
use crate::runtime::options::StartRequest;
use crate::runtime::shared::Shared;
use reprise_store::{Inserted, WorkflowRecord, WorkflowStatus};

/// Records a start and, when it is not queued, drives it in the background. This is the
/// one place that decides whether a start needs a drive; see [`drive_after_start`].
pub(crate) async fn start(
    shared: &Arc<Shared>,
    component: &LoadedComponent,
    request: StartRequest,
    existing: Existing,
) -> Result<Inserted, RuntimeError> {
    let parent = request.parent.clone();
    let inserted = shared.submit(component, request, true).await?;
    let running_here = |id: &str| shared.running.contains(id);
    if let Some(begin) = drive_after_start(&inserted, existing, parent.as_deref(), running_here) {
        spawn(shared, begin);
    }
    Ok(inserted)
}

/// Whether a run of `request` may run its code before its row is written (see
/// [`crate::runtime::drive::unwritten`]): only a new workflow with a generated id that starts
/// now, here, with no queue, delay or parent: nobody else can know of it until it ends.
pub(crate) fn runs_before_written(request: &StartRequest) -> bool {
    request.id.is_none()
        && request.queue.is_none()
        && request.not_before.is_none()
        && request.parent.is_none()
        && request.deduplication_id.is_none()
}

/// What a start does with a workflow that already exists under the requested id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Leave it: it runs wherever it runs, or recovery picks it up.
    Leave,
    /// Join it when it is the starter's own child (same parent): drive it when it is PENDING
    /// and not running here (a child created by a parent execution that crashed before it
    /// recorded the start). Anyone else's workflow is left alone: naming its id never takes
    /// it away from its owner.
    Join,
}

/// Whether a recorded start needs a drive, and how it begins. Queued workflows wait for their
/// dispatcher; a new one begins with its first execution already recorded.
pub(crate) fn drive_after_start(
    inserted: &Inserted,
    existing: Existing,
    parent: Option<&str>,
    running_here: impl Fn(&str) -> bool,
) -> Option<Begin> {
    let record = &inserted.record;
    // Queued or delayed: its queue's dispatcher, or the starter of delayed workflows, runs it.
    if record.queue_name.is_some() || record.status == WorkflowStatus::Enqueued {
        None
    } else if inserted.created {
        Some(Begin::Created(Box::new(record.clone())))
    } else if existing == Existing::Join
        && parent.is_some()
        && record.parent_workflow_id.as_deref() == parent
        && record.status == WorkflowStatus::Pending
        && !running_here(&record.id)
    {
        Some(Begin::Id(record.id.clone()))
    } else {
        None
    }
}

/// What a run that names an existing workflow's id does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Join {
    /// It ended or is paused: report it as it is.
    Settled,
    /// It is this executor's own PENDING work that nothing here drives: recover it.
    Drive,
    /// Another executor owns it: take it over if that executor's lease ran out (the store
    /// decides, atomically), else wait for its end.
    Adopt,
    /// Someone drives it (here, or its queue's dispatcher will): wait for its end.
    Await,
}

/// Decides [`Join`] for `record` as seen by executor `me`.
pub(crate) fn join(record: &WorkflowRecord, me: &str, running_here: bool) -> Join {
    if record.status.is_settled() {
        Join::Settled
    } else if record.status != WorkflowStatus::Pending || running_here {
        Join::Await
    } else if record.executor_id == me {
        Join::Drive
    } else {
        Join::Adopt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inserted(created: bool, queue: Option<&str>, status: WorkflowStatus) -> Inserted {
        Inserted {
            created,
            record: WorkflowRecord {
                queue_name: queue.map(str::to_string),
                parent_workflow_id: Some("parent".into()),
                ..WorkflowRecord::example("w", status)
            },
        }
    }

    fn decide(inserted: &Inserted, existing: Existing, running: bool) -> Option<&'static str> {
        drive_after_start(inserted, existing, Some("parent"), |_| running).map(
            |begin| match begin {
                Begin::Created(_) => "created",
                Begin::Id(_) => "by id",
                Begin::Unpark { .. } => "unparked",
                Begin::Unwritten(_) => "unwritten",
            },
        )
    }

    #[test]
    fn a_new_unqueued_workflow_is_driven_from_its_insert() {
        let new = inserted(true, None, WorkflowStatus::Pending);
        assert_eq!(decide(&new, Existing::Leave, false), Some("created"));
        assert_eq!(decide(&new, Existing::Join, false), Some("created"));
    }

    #[test]
    fn only_a_new_generated_start_here_runs_before_its_row() {
        let plain = StartRequest::new("flow", "null");
        assert!(runs_before_written(&plain));
        let named = StartRequest {
            id: Some("mine".into()),
            ..plain.clone()
        };
        let queued = StartRequest {
            queue: Some("q".into()),
            ..plain.clone()
        };
        let delayed = StartRequest {
            not_before: Some(1),
            ..plain.clone()
        };
        let child = StartRequest {
            parent: Some("p".into()),
            ..plain.clone()
        };
        for request in [named, queued, delayed, child] {
            assert!(!runs_before_written(&request), "{request:?}");
        }
    }

    #[test]
    fn queued_workflows_wait_for_their_dispatcher() {
        let queued = inserted(true, Some("q"), WorkflowStatus::Enqueued);
        assert_eq!(decide(&queued, Existing::Join, false), None);
        let old = inserted(false, Some("q"), WorkflowStatus::Pending);
        assert_eq!(decide(&old, Existing::Join, false), None);
    }

    #[test]
    fn an_existing_pending_workflow_is_driven_only_when_joined_and_idle_here() {
        let orphan = inserted(false, None, WorkflowStatus::Pending);
        assert_eq!(decide(&orphan, Existing::Leave, false), None);
        assert_eq!(decide(&orphan, Existing::Join, false), Some("by id"));
        assert_eq!(decide(&orphan, Existing::Join, true), None);
        let done = inserted(false, None, WorkflowStatus::Success);
        assert_eq!(decide(&done, Existing::Join, false), None);
    }

    #[test]
    fn another_workflows_id_is_never_joined() {
        let foreign = Inserted {
            created: false,
            record: WorkflowRecord {
                parent_workflow_id: Some("someone-else".into()),
                ..WorkflowRecord::example("victim", WorkflowStatus::Pending)
            },
        };
        assert_eq!(decide(&foreign, Existing::Join, false), None);
        let top_level = Inserted {
            created: false,
            record: WorkflowRecord::example("victim", WorkflowStatus::Pending),
        };
        assert_eq!(decide(&top_level, Existing::Join, false), None);
    }

    #[test]
    fn a_run_drives_only_its_own_work_and_waits_for_anyone_elses() {
        let owned = |executor: &str, status| WorkflowRecord {
            executor_id: executor.into(),
            ..WorkflowRecord::example("w", status)
        };
        let pending_mine = owned("me", WorkflowStatus::Pending);
        assert_eq!(join(&pending_mine, "me", false), Join::Drive);
        assert_eq!(join(&pending_mine, "me", true), Join::Await);
        let pending_theirs = owned("them", WorkflowStatus::Pending);
        assert_eq!(join(&pending_theirs, "me", false), Join::Adopt);
        let queued = owned("them", WorkflowStatus::Enqueued);
        assert_eq!(join(&queued, "me", false), Join::Await);
        for settled in [WorkflowStatus::Success, WorkflowStatus::Paused] {
            assert_eq!(join(&owned("them", settled), "me", false), Join::Settled);
        }
    }
}
