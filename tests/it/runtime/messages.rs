//! Messages, events and streams in one process, with the real `approval` guest: delivery in
//! send order, messages that wait for their recv, recorded sends that a replay does not
//! repeat, events read at once or awaited, streams read while written and ended at the
//! workflow's end, and many workflows parked in recv at once.

use crate::common;
use crate::guests::APPROVAL;

use std::time::Duration;

use common::{Harness, options};
use reprise_host::WorkflowStatus;
use reprise_host::runtime::StartRequest;
use serde_json::{Value, json};

const LONG: Duration = Duration::from_secs(30);

/// Starts `workflow` of the approval guest under `id` in the background.
async fn submit(harness: &Harness, id: &str, workflow: &str, input: Value) {
    let component = harness.component(APPROVAL).await;
    let request = StartRequest {
        id: Some(id.into()),
        ..StartRequest::new(workflow, input.to_string())
    };
    harness
        .runtime
        .submit(&component, request)
        .await
        .expect("submit");
}

async fn ended(harness: &Harness, id: &str) -> reprise_host::WorkflowRecord {
    harness
        .runtime
        .wait(id, Some(LONG))
        .await
        .expect("wait")
        .unwrap_or_else(|| panic!("{id} did not end"))
}

fn output(record: &reprise_host::WorkflowRecord) -> Value {
    assert_eq!(
        record.status,
        WorkflowStatus::Success,
        "{}: {:?}",
        record.id,
        record.error
    );
    serde_json::from_str(record.output.as_deref().unwrap_or("null")).expect("output json")
}

#[tokio::test]
async fn messages_sent_before_the_recv_wait_for_it_and_arrive_in_send_order() {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(APPROVAL).await;
    // Created, not yet running: the messages are there before any recv.
    let input = json!({"count": 3, "timeout_ms": 30_000}).to_string();
    harness
        .runtime
        .start(&component, "echo_messages", &input, Some("echo".into()))
        .await
        .expect("start");
    let mailbox = harness.runtime.mailbox();
    for n in 1..=3 {
        let stored = mailbox
            .send_message("echo", "in", &json!({ "n": n }).to_string(), None)
            .await
            .expect("send");
        assert!(stored);
    }
    let record = harness.runtime.drive("echo").await.expect("drive");
    assert_eq!(output(&record), json!([{"n": 1}, {"n": 2}, {"n": 3}]));
    let messages = harness.store.messages("echo").await.expect("messages");
    assert!(
        messages.iter().all(|m| m.consumed_at.is_some()),
        "each is consumed"
    );
    let positions: Vec<_> = messages.iter().filter_map(|m| m.consumed_by).collect();
    assert_eq!(positions.len(), 3, "each consumed by a recorded position");
}

#[tokio::test]
async fn an_idempotency_key_stores_a_message_once_and_an_unknown_id_is_refused() {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(APPROVAL).await;
    let input = json!({"count": 2, "timeout_ms": 300}).to_string();
    harness
        .runtime
        .start(&component, "echo_messages", &input, Some("once".into()))
        .await
        .expect("start");
    let mailbox = harness.runtime.mailbox();
    let first = mailbox
        .send_message("once", "in", "\"hello\"", Some("k-1"))
        .await
        .expect("send");
    let again = mailbox
        .send_message("once", "in", "\"hello\"", Some("k-1"))
        .await
        .expect("send again");
    assert!(first && !again, "the repeat stores nothing");
    let record = harness.runtime.drive("once").await.expect("drive");
    // One message came; the second recv timed out.
    assert_eq!(output(&record), json!(["hello"]));

    let unknown = mailbox
        .send_message("nobody", "in", "1", None)
        .await
        .expect_err("unknown destination");
    assert!(unknown.to_string().contains("nobody"), "{unknown}");
}

#[tokio::test]
async fn a_workflow_waiting_in_recv_parks_and_wakes_when_its_message_comes() {
    let harness = Harness::new(options(3)).await;
    submit(
        &harness,
        "waiter",
        "echo_messages",
        json!({"count": 1, "timeout_ms": 60_000}),
    )
    .await;
    let parked = common::server::poll_until(
        || async { harness.runtime.instance_usage().parked },
        |parked| *parked == 1,
    )
    .await;
    assert_eq!(parked, 1, "the waiting workflow holds no instance");
    harness
        .runtime
        .mailbox()
        .send_message("waiter", "in", "\"wake\"", None)
        .await
        .expect("send");
    let record = ended(&harness, "waiter").await;
    assert_eq!(output(&record), json!(["wake"]));
}

#[tokio::test]
async fn a_recv_timeout_returns_none_and_is_recorded() {
    let harness = Harness::new(options(3)).await;
    submit(
        &harness,
        "quiet",
        "echo_messages",
        json!({"count": 1, "timeout_ms": 200}),
    )
    .await;
    let record = ended(&harness, "quiet").await;
    assert_eq!(output(&record), json!([]));
    let steps = harness.steps("quiet").await;
    let recv = steps
        .iter()
        .find(|s| s.name == "reprise.recv:in")
        .expect("the recv is recorded");
    assert_eq!(recv.output.as_deref(), Some(r#"{"timed_out":true}"#));
    assert!(
        steps.iter().any(|s| s.name == "reprise.recv-deadline"),
        "its deadline is recorded first: {steps:?}"
    );
}

#[tokio::test]
async fn a_send_from_a_workflow_is_delivered_once_and_to_an_unknown_id_fails() {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(APPROVAL).await;
    let input = json!({"count": 1, "timeout_ms": 30_000}).to_string();
    harness
        .runtime
        .start(&component, "echo_messages", &input, Some("inbox".into()))
        .await
        .expect("start");
    let notify = json!({"to": "inbox", "topic": "in", "message": {"from": "notifier"}});
    let sender = harness
        .runtime
        .run(
            &component,
            "notify",
            &notify.to_string(),
            Some("notifier".into()),
        )
        .await
        .expect("run");
    assert_eq!(sender.status, WorkflowStatus::Success, "{:?}", sender.error);
    // Resuming the finished sender's history again replays the send: still one message.
    harness
        .store
        .fork_workflow("notifier", "notifier-again", 1)
        .await
        .expect("fork");
    let replayed = harness
        .runtime
        .drive("notifier-again")
        .await
        .expect("drive");
    assert_eq!(replayed.status, WorkflowStatus::Success);
    assert_eq!(
        harness
            .store
            .messages("inbox")
            .await
            .expect("messages")
            .len(),
        1
    );
    let received = harness.runtime.drive("inbox").await.expect("drive");
    assert_eq!(output(&received), json!([{"from": "notifier"}]));

    let lost = json!({"to": "no-such-workflow", "topic": "in", "message": 1});
    let failed = harness
        .runtime
        .run(&component, "notify", &lost.to_string(), None)
        .await
        .expect("run");
    assert_eq!(failed.status, WorkflowStatus::Error);
    let error = failed.error.unwrap_or_default();
    assert!(error.contains("no-such-workflow"), "{error}");
}

#[tokio::test]
async fn events_are_read_at_once_awaited_by_other_workflows_and_from_outside() {
    let harness = Harness::new(options(3)).await;
    // A reader waits for an event that is not set yet.
    submit(
        &harness,
        "reader",
        "wait_event",
        json!({"workflow_id": "publisher", "key": "ready", "timeout_ms": 30_000}),
    )
    .await;
    let component = harness.component(APPROVAL).await;
    let publish = json!({"key": "ready", "values": [1, 2, {"done": true}]});
    let publisher = harness
        .runtime
        .run(
            &component,
            "publish_events",
            &publish.to_string(),
            Some("publisher".into()),
        )
        .await
        .expect("run");
    assert_eq!(output(&publisher), json!(3));
    let reader = output(&ended(&harness, "reader").await);
    assert!(
        [json!(1), json!(2), json!({"done": true})].contains(&reader),
        "the reader got a value the publisher set: {reader}"
    );
    let mailbox = harness.runtime.mailbox();
    let latest = mailbox
        .get_event("publisher", "ready", Duration::ZERO)
        .await
        .expect("get")
        .expect("set");
    assert_eq!(latest.value, r#"{"done":true}"#, "the latest value wins");
    let unset = mailbox
        .get_event("publisher", "never", Duration::from_millis(100))
        .await
        .expect("get");
    assert!(unset.is_none());

    // A get-event that times out returns none, and says so in its record.
    let timed_out = json!({"workflow_id": "publisher", "key": "never", "timeout_ms": 100});
    let record = harness
        .runtime
        .run(&component, "wait_event", &timed_out.to_string(), None)
        .await
        .expect("run");
    assert_eq!(output(&record), Value::Null);
}

#[tokio::test]
pub(crate) async fn the_approval_workflow_reports_streams_and_ends_on_a_decision() {
    let harness = Harness::new(options(3)).await;
    submit(
        &harness,
        "approve-1",
        "approval",
        json!({"request": "buy a boat", "approver": "ada", "timeout_ms": 60_000}),
    )
    .await;
    let mailbox = harness.runtime.mailbox();
    let status = mailbox
        .get_event("approve-1", "status", LONG)
        .await
        .expect("event")
        .expect("status set");
    assert_eq!(status.value, r#""waiting""#);
    let first = mailbox
        .read_stream("approve-1", "log", 0, LONG)
        .await
        .expect("stream");
    assert!(!first.entries.is_empty() && !first.closed, "{first:?}");
    mailbox
        .send_message(
            "approve-1",
            "decision",
            &json!({"approve": true, "by": "ada"}).to_string(),
            None,
        )
        .await
        .expect("send");
    let done = output(&ended(&harness, "approve-1").await);
    assert_eq!(done["outcome"], "approved");
    assert_eq!(done["by"], "ada");
    let log = mailbox
        .read_stream("approve-1", "log", 0, Duration::ZERO)
        .await
        .expect("stream");
    assert!(log.closed, "the stream ended with the workflow");
    assert!(log.entries.len() >= 2, "{log:?}");
    let offsets: Vec<u64> = log.entries.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, (0..log.entries.len() as u64).collect::<Vec<_>>());
    let status = mailbox
        .get_event("approve-1", "status", Duration::ZERO)
        .await
        .expect("event")
        .expect("set");
    assert_eq!(status.value, r#""approved""#);
}

#[tokio::test]
async fn an_approval_without_an_answer_escalates_at_its_timeout() {
    let harness = Harness::new(options(3)).await;
    submit(
        &harness,
        "late",
        "approval",
        json!({"request": "a raise", "approver": "bob", "timeout_ms": 300}),
    )
    .await;
    let done = output(&ended(&harness, "late").await);
    assert_eq!(done["outcome"], "escalated");
    let steps = harness.steps("late").await;
    assert!(steps.iter().any(|s| s.name == "escalate"), "{steps:?}");
}

#[tokio::test]
async fn a_thousand_workflows_parked_in_recv_each_wake_for_their_own_message() {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(APPROVAL).await;
    const N: usize = 1000;
    for i in 0..N {
        let request = StartRequest {
            id: Some(format!("w-{i}")),
            ..StartRequest::new(
                "echo_messages",
                json!({"count": 1, "timeout_ms": 120_000}).to_string(),
            )
        };
        harness
            .runtime
            .submit(&component, request)
            .await
            .expect("submit");
    }
    let parked = common::server::poll_until(
        || async { harness.runtime.instance_usage().parked },
        |parked| *parked == N,
    )
    .await;
    assert_eq!(parked, N, "all wait without an instance");
    let mailbox = harness.runtime.mailbox();
    for i in 0..N {
        mailbox
            .send_message(&format!("w-{i}"), "in", &i.to_string(), None)
            .await
            .expect("send");
    }
    for i in 0..N {
        let record = ended(&harness, &format!("w-{i}")).await;
        assert_eq!(output(&record), json!([i]), "w-{i} got its own message");
    }
}

#[tokio::test]
async fn get_event_waits_for_a_workflow_started_after_it_and_refuses_one_never_started() {
    let harness = Harness::new(options(3)).await;
    let mailbox = harness.runtime.mailbox();
    // Asked before the workflow exists, as a caller racing its start is.
    let early = tokio::spawn({
        let mailbox = mailbox.clone();
        async move { mailbox.get_event("late-start", "ready", LONG).await }
    });
    let publish = json!({"key": "ready", "values": ["yes"]});
    submit(&harness, "late-start", "publish_events", publish).await;
    let event = early.await.expect("task").expect("get").expect("set");
    assert_eq!(event.value, r#""yes""#);

    let never = mailbox
        .get_event("never-started", "ready", Duration::from_millis(100))
        .await
        .expect_err("an id that never came");
    assert!(never.to_string().contains("never-started"), "{never}");
}
