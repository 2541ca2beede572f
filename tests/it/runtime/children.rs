//! Child workflows started from a workflow are recorded like steps: their results reach the
//! parent, and a recovered parent finds its children instead of starting them twice.

use crate::common;
use crate::guests::FIB;

use common::{Harness, options};
use reprise_host::store::WorkflowFilter;
use reprise_host::{WorkflowRecord, WorkflowStatus};

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
