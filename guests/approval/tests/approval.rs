//! The approval under `cargo test`: a decision sent by the test, a day without one passed in
//! virtual time, and a crash after escalating replayed without escalating twice.

use std::time::Duration;

use approval::{ApprovalOutcome, Echo, Notify, Request, approval, echo_messages, notify};
use reprise_guest::testing::Harness;
use serde_json::json;

fn ask(timeout_ms: u64) -> Request {
    Request {
        request: "deploy".into(),
        approver: "ada".into(),
        timeout_ms,
    }
}

#[test]
fn an_approval_reports_waiting_then_its_decision_and_closes_its_log() {
    let mut h = Harness::new();
    h.message(
        "decision",
        &json!({"approve": true, "by": "ada", "comment": "ship it"}),
    );
    let outcome = h
        .run(|| approval(ask(60_000)))
        .expect("no crash")
        .expect("ok");
    assert_eq!(
        outcome,
        ApprovalOutcome {
            outcome: "approved".into(),
            by: "ada".into(),
            comment: "ship it".into()
        }
    );
    assert_eq!(h.events()["status"], json!("approved"));
    assert_eq!(
        h.stream("log"),
        vec![
            json!("asked ada to approve \"deploy\""),
            json!("approved by ada")
        ]
    );
    assert!(h.stream_closed("log"));
    assert_eq!(h.slept(), Duration::ZERO, "the decision was there: no wait");
}

#[test]
fn a_rejection_keeps_its_comment() {
    let mut h = Harness::new();
    h.message(
        "decision",
        &json!({"approve": false, "by": "bob", "comment": "not now"}),
    );
    let outcome = h
        .run(|| approval(ask(60_000)))
        .expect("no crash")
        .expect("ok");
    assert_eq!(outcome.outcome, "rejected");
    assert_eq!(outcome.comment, "not now");
}

#[test]
fn a_day_without_an_answer_escalates_once_even_across_a_crash() {
    let mut h = Harness::new();
    h.crash_after_steps(1);
    let request = Request {
        timeout_ms: 86_400_000,
        ..ask(0)
    };
    assert!(
        h.run(|| approval(request.clone())).is_err(),
        "crashed after escalating"
    );
    assert_eq!(
        h.slept(),
        Duration::from_secs(86_400),
        "waited the whole day, virtually"
    );
    // A decision arriving after the timeout was recorded does not change the replay.
    h.message("decision", &json!({"approve": true, "by": "late"}));
    let outcome = h.run(|| approval(request)).expect("no crash").expect("ok");
    assert_eq!(outcome.outcome, "escalated");
    assert_eq!(outcome.by, "timeout");
    assert_eq!(h.executions("escalate"), 1, "replayed, not escalated again");
    assert_eq!(h.events()["status"], json!("escalated"));
}

#[test]
fn echo_takes_messages_in_send_order_and_stops_at_a_timeout() {
    let mut h = Harness::new();
    h.message("in", &1)
        .message("other", &"not mine")
        .message("in", &2);
    let got = h
        .run(|| {
            echo_messages(Echo {
                count: 5,
                timeout_ms: 10,
            })
        })
        .expect("no crash")
        .expect("ok");
    assert_eq!(got, vec![json!(1), json!(2)]);
}

#[test]
fn a_send_is_recorded_and_not_repeated_by_a_replay() {
    let mut h = Harness::new();
    let note = Notify {
        to: "inbox".into(),
        topic: "in".into(),
        message: json!({"hello": 1}),
    };
    h.run(|| notify(note.clone()))
        .expect("no crash")
        .expect("ok");
    h.run(|| notify(note)).expect("no crash").expect("ok");
    assert_eq!(
        h.sent(),
        vec![("inbox".to_string(), "in".to_string(), json!({"hello": 1}))]
    );
}
