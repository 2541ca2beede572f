//! Step timeouts are hard: an attempt that runs past `timeout_ms` is interrupted even in a
//! busy loop that never calls the host, fails with a timeout error, and is retried per the
//! step's policy; the workflow's own instance lives on.

use crate::common;
use crate::guests::CHAOS;

use std::time::{Duration, Instant};

use common::{Harness, options};
use reprise_host::WorkflowStatus;

#[tokio::test]
async fn a_spinning_attempt_is_interrupted_and_the_next_one_answers() {
    let mut harness = Harness::new(options(10)).await;
    let started = Instant::now();
    let record = harness.run(CHAOS, "timed", "1").await;
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    assert_eq!(record.output.as_deref(), Some(r#""answered on attempt 2""#));
    assert_eq!(harness.executions_of(&record.id, "spin_then_answer"), 2);
    assert_eq!(record.traps, 0, "the workflow's instance never trapped");
    // The default CPU budget would have let the loop run for about ten seconds.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn attempts_that_all_time_out_exhaust_the_retries_naming_the_timeout() {
    let mut harness = Harness::new(options(10)).await;
    let record = harness.run(CHAOS, "timed", "3").await;
    assert_eq!(record.status, WorkflowStatus::Error);
    let error = record.error.unwrap_or_default();
    for attempt in 1..=3 {
        let expected = format!(
            "step \"spin_then_answer\" timed out: attempt {attempt} of 3 was interrupted after \
             200 ms"
        );
        assert!(error.contains(&expected), "{error}");
    }
    let steps = harness.steps(&record.id).await;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].attempts, 3);
}
