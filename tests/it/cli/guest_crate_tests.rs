//! A guest author's `cargo test`: the shop, approval and fulfilment guests' own tests run
//! natively in their crates, with the SDK's test harness standing in for the host.

use std::path::PathBuf;
use std::process::Command;

use crate::guests::{APPROVAL, FULFILMENT, SHOP};

#[test]
fn the_guests_native_tests_pass_under_cargo_test() {
    let guests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("guests");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&guests)
        .args([
            "test",
            "-p",
            SHOP,
            "-p",
            APPROVAL,
            "-p",
            FULFILMENT,
            "--target-dir",
        ])
        .arg(guests.join("target"))
        // Uncaptured, so a panic message would show: a simulated crash must print none.
        .args(["--", "--nocapture"])
        // The outer cargo's settings are for the host workspace, not this one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        .output()
        .expect("run cargo test in guests/");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo test -p shop -p approval -p fulfilment failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked"),
        "a simulated crash printed a panic:\n{stderr}"
    );
    for test in [
        "a_paid_order_gets_a_receipt",
        "a_failing_payment_api_is_retried_with_backoff",
        "when_payment_fails_for_good_the_stock_is_released",
        "a_crash_after_reserving_does_not_reserve_again",
        "an_approval_reports_waiting_then_its_decision_and_closes_its_log",
        "a_day_without_an_answer_escalates_once_even_across_a_crash",
        "a_send_is_recorded_and_not_repeated_by_a_replay",
        "a_shipped_order_is_confirmed",
        "an_order_not_shipped_in_time_is_released_and_refunded",
        "a_malformed_shipment_is_refused_before_the_workflow_sees_it",
        "the_charge_carries_a_key_that_a_retry_repeats",
    ] {
        assert!(
            stdout.contains(&format!("test {test} ... ok")),
            "{test} did not pass:\n{stdout}"
        );
    }
}
