//! Patches under the native harness: new code replays a history the old code recorded, and
//! takes the new branch where the workflow had not yet passed the patch.

use reprise_guest::prelude::*;
use reprise_guest::testing::Harness;

#[step]
fn reserve(order: u32) -> Result<String, String> {
    Ok(format!("reserved {order}"))
}

#[step]
fn fraud_check(order: u32) -> Result<bool, String> {
    Ok(order != 13)
}

#[step]
fn charge(order: u32) -> Result<String, String> {
    Ok(format!("charged {order}"))
}

/// v1: reserve, then charge.
#[workflow]
fn order_v1(order: u32) -> Result<String, String> {
    reserve(order)?;
    Ok(charge(order)?)
}

/// v2: a fraud check before the charge, behind a patch.
#[workflow]
fn order_v2(order: u32) -> Result<String, String> {
    reserve(order)?;
    if patched("fraud-check") && !fraud_check(order)? {
        return Err(format!("order {order} refused"));
    }
    Ok(charge(order)?)
}

/// v3: the old branch is gone; histories with the marker still replay.
#[workflow]
fn order_v3(order: u32) -> Result<String, String> {
    reserve(order)?;
    deprecate_patch("fraud-check");
    if !fraud_check(order)? {
        return Err(format!("order {order} refused"));
    }
    Ok(charge(order)?)
}

fn names(harness: &Harness) -> Vec<String> {
    harness.steps().into_iter().map(|s| s.name).collect()
}

#[test]
fn a_workflow_past_the_patch_replays_the_old_branch() {
    let mut harness = Harness::new();
    assert_eq!(harness.run(|| order_v1(13)), Ok(Ok("charged 13".into())));
    // The same history, replayed by the new code: no fraud check, the same result.
    assert_eq!(harness.run(|| order_v2(13)), Ok(Ok("charged 13".into())));
    assert_eq!(harness.executions("fraud_check"), 0);
    assert_eq!(names(&harness), ["reserve", "charge"]);
}

#[test]
fn a_workflow_before_the_patch_takes_the_new_branch() {
    let mut harness = Harness::new();
    harness.crash_after_steps(1);
    assert!(
        harness.run(|| order_v1(13)).is_err(),
        "crashed after reserve"
    );
    // Resumed on the new code: it had not reached the charge, so the check runs.
    assert_eq!(
        harness.run(|| order_v2(13)),
        Ok(Err("order 13 refused".into()))
    );
    assert_eq!(names(&harness), ["reserve", "fraud_check"]);
}

#[test]
fn a_deprecated_patch_replays_histories_that_recorded_its_marker() {
    let mut harness = Harness::new();
    assert_eq!(harness.run(|| order_v2(7)), Ok(Ok("charged 7".into())));
    assert_eq!(harness.run(|| order_v3(7)), Ok(Ok("charged 7".into())));
    assert_eq!(
        harness.executions("fraud_check"),
        1,
        "replayed, not run again"
    );
}
