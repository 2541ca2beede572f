//! Child workflows from the parent's side: a start and an await are recorded like steps, so a
//! recovered parent gets the same child back and never waits twice.

use reprise_protocol::recorded;
use serde::{Deserialize, Serialize};

use crate::bindings::{ChildFailure, ChildOptions};
use crate::quotas::{Quota, children_refused};
use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::history::Call;
use crate::runtime::execution::interrupt::{cancelled, host_failure, parked, violation};
use crate::runtime::ids::child_id;
use crate::runtime::options::StartRequest;
use crate::runtime::waiting::completion::Waited;
use crate::runtime::waiting::park::PARK_AFTER;
use crate::runtime::waiting::wake::Wake;
use reprise_store::{StoreError, WorkflowStatus};

/// How a child's end is recorded in the parent's history: `{"ok": output}` or
/// `{"err": {"status": …, "message": …}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChildResult {
    Ok(serde_json::Value),
    Err { status: String, message: String },
}

/// Starts a child of the parent's component and instance, recorded at the parent's next
/// position. Its id defaults to [`child_id`] (`<parent>-<position>`), so a replay asks for the
/// same child; a guest-chosen id that breaks the id rule fails the start, which the guest sees
/// as `ChildError::NotStarted`.
pub(crate) async fn start(
    ctx: &mut WorkflowContext,
    workflow: String,
    input: Vec<u8>,
    options: ChildOptions,
) -> wasmtime::Result<Result<String, String>> {
    let host = ctx.host.clone();
    let (parent, instance, epoch) = (ctx.info.id.clone(), ctx.info.instance.clone(), ctx.epoch);
    let run = ctx.run;
    let call = Call::with_args(
        recorded::start_child(&workflow),
        &[workflow.as_bytes(), &input],
    );
    // Counted on every replay alike, so a refusal is met at the same call.
    ctx.children_started += 1;
    let max_children = ctx.quotas.max_children;
    let over_quota = ctx.children_started > max_children;
    ctx.recorded(call, |function_id| async move {
        if over_quota {
            host.metrics().quota_refused(Quota::Children);
            return Ok(Err(children_refused(&instance, max_children)));
        }
        // A child is created before the parent's record of it: no stale parent may create one.
        host.may_act(epoch).await.map_err(host_failure)?;
        let Ok(input) = String::from_utf8(input) else {
            return Ok(Err(format!(
                "input of child workflow {workflow:?} is not UTF-8"
            )));
        };
        let request = StartRequest {
            id: Some(
                options
                    .id
                    .unwrap_or_else(|| child_id(&parent, run, function_id)),
            ),
            queue: options.queue,
            priority: options.priority.unwrap_or(0),
            deduplication_id: options.deduplication_id,
            parent: Some(parent),
            instance,
            ..StartRequest::new(workflow, input)
        };
        host.start_child(request).await.map_err(host_failure)
    })
    .await
}

/// Waits for a child to end and hands its output (or failure) to the parent, recorded.
pub(crate) async fn wait(
    ctx: &mut WorkflowContext,
    id: String,
) -> wasmtime::Result<Result<Vec<u8>, ChildFailure>> {
    let (host, cancel) = (ctx.host.clone(), ctx.cancel.clone());
    let call = Call::named(recorded::await_child(&id));
    let child_id = id.clone();
    let result: ChildResult = ctx
        .recorded(call, |_| async move {
            if let Some(refused) = host.out_of_reach(&id).await.map_err(host_failure)? {
                return Ok(ChildResult::Err {
                    status: "UNKNOWN".into(),
                    message: refused,
                });
            }
            // A child that ends soon is awaited in place; otherwise the parent parks and
            // nothing is recorded here until a replay finds the child ended.
            let waited = tokio::select! {
                waited = host.wait_for(&id, PARK_AFTER) => waited.map_err(host_failure)?,
                _ = cancel.cancelled() => return Err(cancelled()),
            };
            if let Waited::TimedOut = waited {
                return Err(parked(Wake::Child(id)));
            }
            ended(&id, waited).map_err(host_failure)
        })
        .await?;
    match result {
        ChildResult::Ok(value) => serde_json::to_vec(&value)
            .map(Ok)
            .map_err(|e| violation(format!("output of child {child_id} is not JSON: {e}"))),
        ChildResult::Err { status, message } => Ok(Err(ChildFailure {
            id: child_id,
            status,
            message,
        })),
    }
}

/// What the parent records about a child's end. A stored output that is not JSON is a
/// corrupt row, never read as `null`.
fn ended(id: &str, waited: Waited) -> Result<ChildResult, StoreError> {
    Ok(match waited {
        Waited::Ended(child) if child.status == WorkflowStatus::Success => {
            let text = child.output.as_deref().unwrap_or("null");
            let value = serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
                table: "workflow_status",
                message: format!("output of workflow {id} is not JSON: {e}"),
            })?;
            ChildResult::Ok(value)
        }
        Waited::Ended(child) => ChildResult::Err {
            status: child.status.to_string(),
            message: child.error.unwrap_or_default(),
        },
        Waited::TimedOut => ChildResult::Err {
            status: "UNKNOWN".into(),
            message: format!("stopped waiting for workflow {id}"),
        },
        Waited::Unknown => ChildResult::Err {
            status: "UNKNOWN".into(),
            message: format!("no workflow with id {id}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reprise_store::WorkflowRecord;

    fn child(status: WorkflowStatus, output: Option<&str>) -> WorkflowRecord {
        WorkflowRecord {
            output: output.map(str::to_string),
            error: Some("boom".into()),
            ..WorkflowRecord::example("c", status)
        }
    }

    #[test]
    fn a_childs_output_is_handed_over_as_json() {
        let result = ended(
            "c",
            Waited::Ended(Box::new(child(WorkflowStatus::Success, Some("[1,2]")))),
        );
        assert!(matches!(result, Ok(ChildResult::Ok(v)) if v == serde_json::json!([1, 2])));
    }

    #[test]
    fn an_unreadable_child_output_is_a_corrupt_row_not_null() {
        let result = ended(
            "c",
            Waited::Ended(Box::new(child(WorkflowStatus::Success, Some("{oops")))),
        );
        let Err(StoreError::Corrupt { message, .. }) = result else {
            panic!("expected a corrupt row, got {result:?}");
        };
        assert!(
            message.contains("output of workflow c is not JSON"),
            "{message}"
        );
    }

    #[test]
    fn a_failed_or_unknown_child_is_the_parents_error_to_handle() {
        let failed = ended(
            "c",
            Waited::Ended(Box::new(child(WorkflowStatus::Error, None))),
        );
        assert!(
            matches!(failed, Ok(ChildResult::Err { status, message }) if status == "ERROR" && message == "boom")
        );
        let unknown = ended("x", Waited::Unknown);
        assert!(
            matches!(unknown, Ok(ChildResult::Err { message, .. }) if message == "no workflow with id x")
        );
    }
}
