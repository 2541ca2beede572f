//! Postgres connections the server dropped while they sat idle in the pool are replaced before
//! a call uses them: the pool pings a connection idle for a second or more, not one used a
//! moment ago (where a ping would cost a round trip before every statement).

use std::time::Duration;

use reprise_host::store::PostgresStore;
use reprise_host::store::roles::*;
use sqlx::Connection;

use super::contract::{new_workflow, step};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replaces_connections_the_server_dropped_while_idle() {
    let url = crate::common::postgres::database("reconnect").await;
    let store = PostgresStore::open(&url).await.expect("open");
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    store.get_workflow("wf").await.expect("read");

    // What a server restart or a network cut does to the pool: every connection but ours ends.
    let mut admin = sqlx::PgConnection::connect(&url).await.expect("admin");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS killed",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminate the store's connections");
    assert!(killed >= 1, "the store held no connection");
    // Past the idle time after which the pool pings a connection before handing it out.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    for _ in 0..4 {
        let read = store.get_workflow("wf").await.expect("read after the cut");
        assert!(read.is_some());
    }
    store
        .record_step(&step("wf", 0))
        .await
        .expect("write after the cut");
    assert_eq!(store.steps("wf").await.expect("steps").len(), 1);
}
