//! Child workflows started from a workflow are recorded like steps: their results reach the
//! parent, and a recovered parent finds its children instead of starting them twice.

use crate::common;
use crate::guests::{CHAOS, FIB};

use common::{Harness, options};
use reprise_host::runtime::StartRequest;
use reprise_host::store::WorkflowFilter;
use reprise_host::{RuntimeEvent, WorkflowRecord, WorkflowStatus};

async fn children_of(h: &Harness, parent: &str) -> Vec<WorkflowRecord> {
    let all = h
        .store
        .list_workflows(&WorkflowFilter::default())
        .await
        .expect("list");
    all.into_iter()
        .filter(|w| w.parent_workflow_id.as_deref() == Some(parent))
        .collect()
}

#[tokio::test]
pub(crate) async fn a_parent_awaits_its_children_and_gets_their_outputs() {
    let mut h = Harness::new(options(3)).await;
    let wf = h.run(FIB, "fib_children", "6").await;
    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(wf.output.as_deref(), Some("[1,1,2,3,5,8]"));
    let children = children_of(&h, &wf.id).await;
    assert_eq!(children.len(), 6);
    assert!(children.iter().all(|c| c.status == WorkflowStatus::Success));
}

#[tokio::test]
async fn a_recovered_parent_never_starts_a_child_twice() {
    let mut h = Harness::new(options(3)).await;
    let wf = h.run(FIB, "fib_children_crash", "5").await;
    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(
        wf.executions, 2,
        "crashed once after starting its children, recovered once"
    );
    assert_eq!(wf.trap_class.as_deref(), Some("panic"));
    assert_eq!(wf.output.as_deref(), Some("[1,1,2,3,5]"));
    let children = children_of(&h, &wf.id).await;
    assert_eq!(children.len(), 5, "five children, not ten: {children:?}");
    for child in &children {
        assert_eq!(child.executions, 1, "each child ran once: {child:?}");
    }
    let steps = h.steps(&wf.id).await;
    let starts = steps
        .iter()
        .filter(|s| s.name == "reprise.start-child:fib")
        .count();
    assert_eq!(starts, 5, "each start recorded once");
}

/// A workflow naming another's id as its child's gets a child error, and the other workflow
/// is left exactly as it was: no new execution, no new epoch, its step run once. Before, the
/// start returned the existing workflow as if it were the caller's child, and on another host
/// it was driven from under its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_id_that_names_another_workflow_takes_nothing_over() {
    let mut h = Harness::new(options(3)).await;
    let component = h.component(CHAOS).await;
    let mut events = h.runtime.subscribe();
    let victim = StartRequest {
        id: Some("victim".into()),
        ..StartRequest::new("blocked", "1500")
    };
    h.runtime
        .submit(&component, victim)
        .await
        .expect("start victim");
    loop {
        match events.recv().await.expect("events") {
            RuntimeEvent::StepExecuting { workflow_id, .. } if workflow_id == "victim" => break,
            _ => {}
        }
    }
    let before = h
        .store
        .get_workflow("victim")
        .await
        .expect("get")
        .expect("row");

    let thief = h.run(CHAOS, "claim_id", r#""victim""#).await;
    assert_eq!(thief.status, WorkflowStatus::Error, "{thief:?}");
    let error = thief.error.unwrap_or_default();
    assert!(error.contains("is not a child of"), "{error}");

    let after = h
        .runtime
        .wait("victim", None)
        .await
        .expect("wait")
        .expect("ended");
    assert_eq!(after.status, WorkflowStatus::Success, "{after:?}");
    assert_eq!(after.executions, before.executions, "no new execution");
    assert_eq!(after.epoch, before.epoch, "no new epoch");
    assert_eq!(h.executions_of("victim", "block"), 1);
}
