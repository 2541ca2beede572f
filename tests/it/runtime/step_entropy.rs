//! Step code gets the real clock and real entropy; workflow code keeps the replayable ones. A
//! token or nonce made in a step must not be predictable from the workflow id, while workflow
//! code must draw the same values on every execution of the same workflow.

use crate::common;
use crate::guests::CHAOS;

use common::{Harness, options};
use reprise_host::WorkflowStatus;
use serde_json::Value;

/// One reading: the bytes `getentropy` gave and the wall clock, in ms.
struct Draw {
    bytes: Value,
    time_ms: u64,
}

/// Runs `entropy` with id `id` on a fresh database; returns its creation time and the draws
/// of workflow code, an inline step and an isolated step.
async fn draws(id: &str) -> (i64, Vec<Draw>) {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(CHAOS).await;
    let record = harness
        .runtime
        .run(&component, "entropy", "null", Some(id.to_string()))
        .await
        .expect("run");
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    let output: Value =
        serde_json::from_str(record.output.as_deref().unwrap_or("null")).expect("output is JSON");
    let draws = output
        .as_array()
        .expect("three draws")
        .iter()
        .map(|d| Draw {
            bytes: d["bytes"].clone(),
            time_ms: d["time_ms"].as_u64().expect("time_ms"),
        })
        .collect();
    (record.created_at, draws)
}

#[tokio::test]
async fn steps_draw_real_entropy_and_time_while_workflow_code_stays_replayable() {
    let before = reprise_host::store::now_ms();
    let (created_a, a) = draws("same-id").await;
    let (created_b, b) = draws("same-id").await;
    let after = reprise_host::store::now_ms();

    // Workflow code: a function of the workflow id and its start, on any database.
    assert_eq!(a[0].bytes, b[0].bytes, "workflow code drew different bytes");
    assert_eq!(a[0].time_ms as i64, created_a);
    assert_eq!(b[0].time_ms as i64, created_b);

    // Step code, inline and isolated: unpredictable, and the real time after the 30 ms sleep.
    for (i, what) in [(1, "an inline step"), (2, "an isolated step")] {
        assert_ne!(
            a[i].bytes, b[i].bytes,
            "{what} drew the same bytes for the same id"
        );
        assert_ne!(a[i].bytes, a[0].bytes, "{what} drew the workflow's bytes");
        for (created, draw) in [(created_a, &a[i]), (created_b, &b[i])] {
            let time = draw.time_ms as i64;
            assert!(
                time >= created + 30 && time >= before && time <= after,
                "{what} saw {time}, not the real time (created {created}, test ran {before}..{after})"
            );
        }
    }
}
