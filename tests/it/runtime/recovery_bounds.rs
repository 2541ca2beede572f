//! A workflow's recovery bound counts its own traps, not the host's crashes: a healthy
//! workflow whose host was killed several times still ends SUCCESS, while a workflow that keeps
//! interrupting its host meets a separate bound that says so.

use crate::common;
use crate::guests::FIB;

use common::{Harness, options};
use reprise_host::WorkflowStatus;
use reprise_host::runtime::{InstanceOptions, RuntimeOptions};

/// Creates fib(8) and begins `crashes` executions that never end, as a host killed under each
/// would leave it.
async fn crashed_workflow(harness: &Harness, crashes: u32) {
    let component = harness.component(FIB).await;
    let started = harness
        .runtime
        .start(&component, "fib", "8", Some("crashed".into()))
        .await
        .expect("start");
    let mut epoch = started.record.epoch;
    for _ in 0..crashes {
        epoch = harness
            .store
            .begin_execution("crashed", "local", epoch)
            .await
            .expect("begin an execution")
            .epoch;
    }
}

#[tokio::test]
async fn host_crashes_do_not_use_up_the_workflows_recovery_attempts() {
    let harness = Harness::new(options(1)).await;
    crashed_workflow(&harness, 3).await;
    let record = harness.runtime.drive("crashed").await.expect("drive");
    assert_eq!(record.status, WorkflowStatus::Success, "{record:?}");
    assert_eq!(record.output.as_deref(), Some("21"));
    assert_eq!((record.executions, record.traps), (4, 0));
}

#[tokio::test]
async fn a_workflow_that_keeps_interrupting_its_host_meets_its_own_bound() {
    let instance = InstanceOptions {
        max_recovery_attempts: 1,
        max_host_recoveries: 2,
        ..InstanceOptions::default()
    };
    let harness = Harness::new(RuntimeOptions::single("local", instance)).await;
    crashed_workflow(&harness, 3).await;
    let record = harness.runtime.drive("crashed").await.expect("drive");
    assert_eq!(record.status, WorkflowStatus::MaxRecoveryAttemptsExceeded);
    let error = record.error.unwrap_or_default();
    assert!(
        error.contains("interrupted by 3 host crashes or restarts, more than the 2"),
        "{error}"
    );
    assert!(error.contains("its own traps: 0"), "{error}");
}
