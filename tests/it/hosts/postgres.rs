//! The Postgres backend under the real runtime, where only Postgres has something to show:
//! several handles on one database (as several hosts have) hearing each other's writes through
//! `LISTEN`/`NOTIFY`. Real guests on a fresh database of a real, throwaway Postgres cluster.
//! What every store must do is checked on Postgres by the contract suite (`store/contract/`);
//! runtime scenarios that hold on either backend run on both through
//! `common::backend::on_each_backend!` (in `runtime/failure_semantics.rs`).
//!
//! The tests share the test process's one cluster (see `common/postgres.rs`). Where Postgres
//! cannot be started they fail, saying what is missing.

use crate::common;
use crate::guests::{APPROVAL, FIB};

use sqlx::Connection;

use common::{Harness, options};
use reprise_host::Durability;
use reprise_host::store::open_store;

/// A message sent through another handle on the database (as another host would) wakes a
/// workflow parked in `recv` through Postgres's notifications, well before the fallback poll.
#[tokio::test]
async fn a_message_from_another_host_wakes_a_parked_recv_through_listen_notify() {
    let url = common::postgres::database("listen").await;
    let h = Harness::with_store(
        open_store(&url, Durability::Synced).await.expect("open"),
        options(3),
    )
    .await;
    let component = h.component(APPROVAL).await;
    let request = reprise_host::runtime::StartRequest {
        id: Some("listener".into()),
        ..reprise_host::runtime::StartRequest::new(
            "echo_messages",
            serde_json::json!({"count": 1, "timeout_ms": 600_000}).to_string(),
        )
    };
    h.runtime.submit(&component, request).await.expect("submit");
    let parked = common::server::poll_until(
        || async { h.runtime.instance_usage().parked },
        |parked| *parked == 1,
    )
    .await;
    assert_eq!(parked, 1);
    let other = reprise_host::runtime::Mailbox::new(
        open_store(&url, Durability::Synced)
            .await
            .expect("open again"),
    );
    // Let the listener's connection settle, as a long-running host's has.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let sent = std::time::Instant::now();
    other
        .send_message("listener", "in", "\"over the wire\"", None)
        .await
        .expect("send");
    let ended = h
        .runtime
        .wait("listener", Some(std::time::Duration::from_secs(10)))
        .await
        .expect("wait")
        .expect("ended");
    let took = sent.elapsed();
    assert_eq!(ended.output.as_deref(), Some(r#"["over the wire"]"#));
    assert!(
        took < std::time::Duration::from_millis(700),
        "woken in {took:?}: the fallback poll is every second"
    );
}

/// Postgres pushes every message, event and stream write to listeners as it commits; every
/// follower in a process shares one `LISTEN` connection.
#[tokio::test]
async fn the_change_feed_hears_another_handles_writes_as_they_commit() {
    let url = common::postgres::database("feed").await;
    let listening = open_store(&url, Durability::Synced).await.expect("open");
    let mut feed = listening.change_feed().expect("postgres pushes changes");
    let mut others = [
        listening.change_feed().expect("a second follower"),
        listening.change_feed().expect("a third follower"),
    ];
    let writer = open_store(&url, Durability::Synced)
        .await
        .expect("open again");
    let workflow = reprise_host::store::NewWorkflow {
        max_recovery_attempts: 1,
        ..reprise_host::store::NewWorkflow::new("w", "n", "null", "e", "v")
    };
    writer.insert_workflow(&workflow).await.expect("insert");
    // The listener connects in the background: send until it hears one.
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut n = 0;
        loop {
            n += 1;
            let message = reprise_host::store::NewMessage {
                destination_id: "w".into(),
                topic: "t".into(),
                message: "1".into(),
                message_id: format!("m{n}"),
            };
            writer.send_message(&message, None).await.expect("send");
            if let Ok(Some(change)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), feed.recv()).await
            {
                return change;
            }
        }
    })
    .await
    .expect("a change is heard");
    assert_eq!(
        heard,
        reprise_host::store::Change::Message {
            workflow_id: "w".into(),
            topic: "t".into()
        }
    );
    for other in &mut others {
        let change = tokio::time::timeout(std::time::Duration::from_secs(5), other.recv())
            .await
            .expect("every follower hears it");
        assert!(matches!(
            change,
            Some(reprise_host::store::Change::Message { .. })
        ));
    }
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("connect");
    let listening_connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'LISTEN%'",
    )
    .fetch_one(&mut admin)
    .await
    .expect("count listeners");
    assert_eq!(listening_connections, 1, "one LISTEN for three followers");
    writer.set_event("w", "k", "1", None).await.expect("set");
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            match feed.recv().await {
                Some(reprise_host::store::Change::Event { key, .. }) => return key,
                Some(_) => continue,
                None => panic!("the feed ended"),
            }
        }
    })
    .await
    .expect("the event is heard");
    assert_eq!(event, "k");
}

/// A cancel committed by another host reaches the running execution through LISTEN/NOTIFY,
/// well before the 200 ms poll would find it.
#[tokio::test]
async fn a_cancel_from_another_host_stops_a_running_workflow_at_once() {
    use std::time::{Duration, Instant};
    let url = common::postgres::database("cancels").await;
    let h = Harness::with_store(
        open_store(&url, Durability::Synced).await.expect("open"),
        options(8),
    )
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = h
        .runtime
        .dispatch()
        .spawn_cancellation_watcher(stop.clone());
    let component = h.component(FIB).await;
    const N: usize = 5;
    for i in 0..N {
        // 20 ms sleeps wait in place: the workflows keep running, never parked.
        let request = reprise_host::runtime::StartRequest {
            id: Some(format!("victim-{i}")),
            ..reprise_host::runtime::StartRequest::new("fib_slow", "[90, 20]")
        };
        h.runtime.submit(&component, request).await.expect("submit");
    }
    let running = common::server::poll_until(|| async { h.runtime.in_flight() }, |n| *n == N).await;
    assert_eq!(running, N);
    let other = open_store(&url, Durability::Synced)
        .await
        .expect("open again");
    // Let the watcher's listening connection settle, as a long-running host's has.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut slowest = Duration::ZERO;
    for i in 0..N {
        let id = format!("victim-{i}");
        let sent = Instant::now();
        other.cancel_workflow(&id).await.expect("cancel");
        let ended = h
            .runtime
            .wait(&id, Some(Duration::from_secs(10)))
            .await
            .expect("wait")
            .expect("ended");
        assert_eq!(ended.status, reprise_host::WorkflowStatus::Cancelled);
        // Its execution stopped too: nothing of it runs here any more.
        let stopped =
            common::server::poll_until(|| async { h.runtime.in_flight() }, |n| *n == N - i - 1)
                .await;
        assert_eq!(stopped, N - i - 1, "{id} still runs");
        slowest = slowest.max(sent.elapsed());
    }
    // By the poll alone, five cancels all under 120 ms would be a 1-in-12 chance.
    assert!(
        slowest < Duration::from_millis(120),
        "the slowest cancel took {slowest:?}"
    );
    // The host that ran them counts their ends, though another process cancelled them.
    let metrics = h.runtime.metrics().render(&[], &[]);
    assert!(
        metrics.contains(&format!(
            "reprise_workflows_finished_total{{status=\"CANCELLED\"}} {N}"
        )),
        "{metrics}"
    );
    stop.cancel();
    watcher.await.expect("watcher");
}

/// An enqueue on one host wakes another host's idle dispatcher through LISTEN/NOTIFY, well
/// before its 100 ms poll would find the work.
#[tokio::test]
async fn an_enqueue_on_another_host_starts_at_once_on_the_host_with_the_queue() {
    use std::time::{Duration, Instant};
    let url = common::postgres::database("enqueues").await;
    let worker = Harness::with_store(
        open_store(&url, Durability::Synced).await.expect("open"),
        options(4),
    )
    .await;
    let queues = std::collections::BTreeMap::from([(
        "q".to_string(),
        reprise_host::node::QueueOptions::default(),
    )]);
    let stop = tokio_util::sync::CancellationToken::new();
    let dispatchers = reprise_host::node::queue::start_dispatchers(
        &worker.runtime.dispatch(),
        &queues,
        stop.clone(),
    );
    let submitter = Harness::with_store(
        open_store(&url, Durability::Synced)
            .await
            .expect("open again"),
        options(4),
    )
    .await;
    // It knows the queue (as every host of one config does) but runs no dispatcher of it.
    submitter.runtime.dispatch().declare_queue("q");
    let component = submitter.component(FIB).await;
    // Let the worker's listening connection settle, as a long-running host's has.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut slowest = Duration::ZERO;
    for i in 0..9 {
        let id = format!("queued-{i}");
        let request = reprise_host::runtime::StartRequest {
            id: Some(id.clone()),
            queue: Some("q".into()),
            ..reprise_host::runtime::StartRequest::new("empty", "null")
        };
        let enqueued = Instant::now();
        submitter
            .runtime
            .submit(&component, request)
            .await
            .expect("enqueue");
        let ended = worker
            .runtime
            .wait(&id, Some(Duration::from_secs(10)))
            .await
            .expect("wait")
            .expect("ended");
        assert_eq!(ended.status, reprise_host::WorkflowStatus::Success);
        slowest = slowest.max(enqueued.elapsed());
    }
    // By the poll alone, nine enqueues all started and ended within 70 ms: about 1 in 25.
    assert!(
        slowest < Duration::from_millis(70),
        "the slowest enqueue took {slowest:?} to start and end"
    );
    stop.cancel();
    for dispatcher in dispatchers {
        dispatcher.await.expect("dispatcher");
    }
}
