//! A durable sleep of u64::MAX milliseconds sleeps (until cancelled); its wake-up time
//! saturates instead of wrapping into the past.

use crate::common;
use crate::guests::CHAOS;

use std::time::Duration;

use common::{Harness, options};
use reprise_host::WorkflowStatus;
use reprise_host::runtime::StartRequest;

#[tokio::test]
async fn an_endless_sleep_does_not_return_at_once_and_can_be_cancelled() {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(CHAOS).await;
    let request = StartRequest {
        id: Some("forever".into()),
        ..StartRequest::new("sleepy", u64::MAX.to_string())
    };
    harness
        .runtime
        .submit(&component, request)
        .await
        .expect("submit");
    let early = harness
        .runtime
        .wait("forever", Some(Duration::from_millis(500)))
        .await
        .expect("wait");
    assert!(
        early.is_none(),
        "the endless sleep ended: {:?}",
        early.map(|r| r.status)
    );
    let steps = harness.steps("forever").await;
    assert_eq!(steps.len(), 1, "the wake-up time is recorded");
    assert_eq!(
        steps[0].output.as_deref(),
        Some(u64::MAX.to_string().as_str())
    );

    harness.runtime.cancel("forever").await.expect("cancel");
    let ended = harness
        .runtime
        .wait("forever", Some(Duration::from_secs(10)))
        .await
        .expect("wait")
        .expect("ended");
    assert_eq!(ended.status, WorkflowStatus::Cancelled);
}
