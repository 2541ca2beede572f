//! Postgres gathers the hot writes of many workflows into shared statements: writes in flight
//! together take far fewer round trips than there are writes, as SQLite's writer shares its
//! commits.

use std::sync::Arc;

use reprise_host::store::roles::*;
use reprise_host::store::{PostgresStore, WorkflowEnd};

use super::contract::{new_workflow, step};

const WORKFLOWS: usize = 64;

/// Runs `write` for every workflow at once; the round trips they took.
async fn at_once<F, Fut>(store: &Arc<PostgresStore>, write: F) -> u64
where
    F: Fn(Arc<PostgresStore>, String) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let before = store.write_trips();
    let tasks: Vec<_> = (0..WORKFLOWS)
        .map(|i| tokio::spawn(write(Arc::clone(store), format!("wf-{i}"))))
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    store.write_trips() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gathers_the_writes_of_many_workflows_into_few_round_trips() {
    let url = crate::common::postgres::database("combining").await;
    let store = Arc::new(PostgresStore::open(&url).await.expect("open"));
    let inserts = at_once(&store, |store, id| async move {
        let new = new_workflow(&id);
        assert!(store.insert_workflow(&new).await.expect("insert").created);
    })
    .await;
    let steps = at_once(&store, |store, id| async move {
        store.record_step(&step(&id, 0)).await.expect("step");
    })
    .await;
    let ends = at_once(&store, |store, id| async move {
        let end = WorkflowEnd::Success("1".to_owned());
        store.finish_workflow(&id, &end, None).await.expect("end");
    })
    .await;
    let most = WORKFLOWS as u64 / 4;
    assert!(
        inserts <= most && steps <= most && ends <= most,
        "{WORKFLOWS} writes of each kind took {inserts}, {steps} and {ends} round trips"
    );
}
