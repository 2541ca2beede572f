//! Messages, events and streams: a send is stored once per id, a receive consumes the oldest
//! message and records it in the same commit, a write recorded at a taken position writes
//! nothing, events keep their latest value, streams end at their close or their workflow's end.

use reprise_host::store::{Change, NewMessage, StepRecord, Store, StoreError, WorkflowEnd};

use super::{new_workflow, step};

fn message(to: &str, topic: &str, body: &str, id: &str) -> NewMessage {
    NewMessage {
        destination_id: to.into(),
        topic: topic.into(),
        message: body.into(),
        message_id: id.into(),
    }
}

fn at(workflow_id: &str, function_id: u32, name: &str) -> StepRecord {
    StepRecord {
        name: name.into(),
        output: Some("null".into()),
        ..step(workflow_id, function_id)
    }
}

pub async fn messages_are_received_once_in_send_order_with_their_record(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("to"))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("from"))
        .await
        .expect("insert");
    assert!(
        store
            .send_message(&message("to", "t", "1", "a"), None)
            .await
            .expect("send")
    );
    assert!(
        !store
            .send_message(&message("to", "t", "1", "a"), None)
            .await
            .expect("again")
    );
    store
        .send_message(&message("to", "other", "\"x\"", "b"), None)
        .await
        .expect("send");
    // A send recorded at the sender's position.
    let sent_at = at("from", 0, "reprise.send");
    store
        .send_message(&message("to", "t", "{\"n\":2}", "from#0"), Some(&sent_at))
        .await
        .expect("recorded send");
    assert_eq!(store.steps("from").await.expect("steps").len(), 1);
    // The same position again: the record is refused and the message is not sent twice.
    let twice = store
        .send_message(&message("to", "t", "3", "from#0-again"), Some(&sent_at))
        .await;
    assert!(
        matches!(twice, Err(StoreError::StepAlreadyRecorded { .. })),
        "{twice:?}"
    );
    assert_eq!(store.messages("to").await.expect("messages").len(), 3);
    let unknown = store
        .send_message(&message("nobody", "t", "1", "c"), None)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownWorkflow(_))),
        "{unknown:?}"
    );

    assert!(store.has_message("to", "t").await.expect("has"));
    let first = store
        .receive_message("to", "t", &at("to", 0, "reprise.recv:t"), false)
        .await
        .expect("receive");
    assert_eq!(first.as_deref(), Some("1"));
    let second = store
        .receive_message("to", "t", &at("to", 1, "reprise.recv:t"), false)
        .await
        .expect("receive");
    assert_eq!(second.as_deref(), Some("{\"n\":2}"));
    // Nothing left on the topic: nothing recorded, unless the wait timed out.
    let none = store
        .receive_message("to", "t", &at("to", 2, "reprise.recv:t"), false)
        .await
        .expect("receive");
    assert_eq!(none, None);
    assert!(!store.has_message("to", "t").await.expect("has"));
    store
        .receive_message("to", "t", &at("to", 2, "reprise.recv:t"), true)
        .await
        .expect("timeout");
    let steps = store.steps("to").await.expect("steps");
    let outputs: Vec<_> = steps
        .iter()
        .map(|s| s.output.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        outputs,
        [
            r#"{"value":1}"#,
            r#"{"value":{"n":2}}"#,
            r#"{"timed_out":true}"#
        ]
    );
    // A receive at a taken position consumes nothing.
    let retaken = store
        .receive_message("to", "other", &at("to", 0, "reprise.recv:other"), false)
        .await;
    assert!(retaken.is_err());
    assert!(store.has_message("to", "other").await.expect("still there"));
    let listed = store.messages("to").await.expect("messages");
    let consumed: Vec<_> = listed
        .iter()
        .map(|m| (m.topic.as_str(), m.consumed_by))
        .collect();
    assert_eq!(consumed, [("t", Some(0)), ("other", None), ("t", Some(1))]);
}

pub async fn events_keep_their_latest_value(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("w"))
        .await
        .expect("insert");
    assert_eq!(store.get_event("w", "k").await.expect("get"), None);
    store.set_event("w", "k", "1", None).await.expect("set");
    store
        .set_event(
            "w",
            "k",
            "\"two\"",
            Some(&at("w", 0, "reprise.set-event:k")),
        )
        .await
        .expect("set");
    store.set_event("w", "a", "true", None).await.expect("set");
    let event = store.get_event("w", "k").await.expect("get").expect("set");
    assert_eq!(event.value, "\"two\"");
    let keys: Vec<_> = store
        .events("w")
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["a", "k"]);
    assert_eq!(store.steps("w").await.expect("steps").len(), 1);
    let unknown = store.set_event("nobody", "k", "1", None).await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownWorkflow(_))),
        "{unknown:?}"
    );
}

pub async fn streams_are_read_from_any_offset_and_end_at_their_close(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("w"))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("v"))
        .await
        .expect("insert");
    for n in 0..5 {
        let offset = store
            .write_stream("w", "log", Some(&n.to_string()), None)
            .await
            .expect("write");
        assert_eq!(offset, n);
    }
    let read = store.read_stream("w", "log", 2, 2).await.expect("read");
    let offsets: Vec<_> = read.entries.iter().map(|e| e.offset).collect();
    assert_eq!((offsets, read.closed), (vec![2, 3], false));
    store
        .write_stream("w", "log", None, None)
        .await
        .expect("close");
    let closed = store.write_stream("w", "log", Some("9"), None).await;
    assert!(
        matches!(closed, Err(StoreError::StreamClosed { .. })),
        "{closed:?}"
    );
    let rest = store.read_stream("w", "log", 4, 100).await.expect("read");
    assert_eq!((rest.entries.len(), rest.closed), (1, true));
    let listed = store.streams("w").await.expect("streams");
    assert_eq!((listed[0].values, listed[0].closed), (5, true));

    // A stream never closed ends with its workflow.
    store
        .write_stream("v", "out", Some("1"), None)
        .await
        .expect("write");
    assert!(
        !store
            .read_stream("v", "out", 0, 10)
            .await
            .expect("read")
            .closed
    );
    store
        .finish_workflow("v", &WorkflowEnd::Success("null".into()), None)
        .await
        .expect("finish");
    assert!(
        store
            .read_stream("v", "out", 1, 10)
            .await
            .expect("read")
            .closed
    );
    // The listing says so too, as the read does.
    let listed = store.streams("v").await.expect("streams");
    assert_eq!(
        (listed[0].values, listed[0].closed),
        (1, true),
        "{listed:?}"
    );
}

pub async fn changes_since_name_what_was_sent_set_and_written(store: &dyn Store) {
    store
        .insert_workflow(&new_workflow("w"))
        .await
        .expect("insert");
    let before = reprise_host::store::now_ms() - 1;
    store
        .send_message(&message("w", "t", "1", "a"), None)
        .await
        .expect("send");
    store.set_event("w", "e", "1", None).await.expect("set");
    store
        .write_stream("w", "s", Some("1"), None)
        .await
        .expect("write");
    let changes = store.changes_since(before).await.expect("changes");
    for expected in [
        Change::Message {
            workflow_id: "w".into(),
            topic: "t".into(),
        },
        Change::Event {
            workflow_id: "w".into(),
            key: "e".into(),
        },
        Change::Stream {
            workflow_id: "w".into(),
            key: "s".into(),
        },
    ] {
        assert!(
            changes.contains(&expected),
            "{expected:?} missing from {changes:?}"
        );
    }
    let later = store
        .changes_since(reprise_host::store::now_ms() + 60_000)
        .await
        .expect("changes");
    assert!(later.is_empty(), "{later:?}");
}

/// What a workflow holds, for its quota: the bytes of the messages it sent (ids `<id>#…`, not
/// another workflow's whose id merely starts alike), its events' latest values and its streams.
pub async fn bytes_held_counts_what_a_workflow_sent_set_and_wrote(store: &dyn Store) {
    for id in ["w", "w2", "dest"] {
        store
            .insert_workflow(&new_workflow(id))
            .await
            .expect("insert");
    }
    assert_eq!(store.bytes_held("w").await.expect("held"), 0);
    // "é" is two bytes: bytes are counted, not characters.
    for (body, id) in [
        ("\"é\"", "w#1"),
        ("12345", "w#2"),
        ("999", "w2#1"),
        ("7", "wx"),
    ] {
        store
            .send_message(&message("dest", "t", body, id), None)
            .await
            .expect("send");
    }
    store
        .set_event("w", "k", "\"old\"", None)
        .await
        .expect("set");
    store.set_event("w", "k", "10", None).await.expect("set");
    store
        .write_stream("w", "s", Some("[1,2]"), None)
        .await
        .expect("write");
    store
        .write_stream("w", "s", None, None)
        .await
        .expect("close");
    // 4 + 5 sent, 2 for the event's latest value, 5 in the stream.
    assert_eq!(store.bytes_held("w").await.expect("held"), 16);
    assert_eq!(store.bytes_held("w2").await.expect("held"), 3);
}
