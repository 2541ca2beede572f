//! A cancel interrupts a step that blocks (a sleeping or waiting client), promptly, and
//! nothing is recorded for it afterwards.

use crate::common;
use crate::guests::CHAOS;

use std::time::Duration;

use common::{Harness, options};
use reprise_host::runtime::StartRequest;
use reprise_host::{RuntimeEvent, WorkflowStatus};

#[tokio::test]
async fn a_cancel_stops_a_step_blocked_in_the_guest() {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(CHAOS).await;
    let mut events = harness.runtime.subscribe();
    let request = StartRequest {
        id: Some("stuck".into()),
        ..StartRequest::new("blocked", "20000")
    };
    harness
        .runtime
        .submit(&component, request)
        .await
        .expect("submit");
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.recv().await {
                Ok(RuntimeEvent::StepExecuting { name, .. }) if name == "block" => break,
                Ok(_) => {}
                Err(err) => panic!("events ended: {err}"),
            }
        }
    })
    .await
    .expect("the blocking step started");

    harness.runtime.cancel("stuck").await.expect("cancel");
    // The execution must end long before the step's 20 s are up.
    assert!(
        harness.runtime.drain(Duration::from_secs(5)).await,
        "the blocked execution did not stop within 5 s of the cancel"
    );
    let record = harness
        .store
        .get_workflow("stuck")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.status, WorkflowStatus::Cancelled);
    assert!(
        harness.steps("stuck").await.is_empty(),
        "a step was recorded after the cancel"
    );
}
