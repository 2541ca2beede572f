//! The database each case of the store contract runs on (a [`Db`], on either backend), and
//! the records and helpers the cases share.

use std::sync::Arc;

use reprise_host::Durability;
use reprise_host::store::{
    NewWorkflow, QueueClaim, StepRecord, Store, WorkflowRecord, WorkflowStatus, open_store,
};
use sqlx::Connection;

/// One backend's database for one test: the store under test, and the way to it.
pub struct Db {
    pub store: Arc<dyn Store>,
    url: String,
    backend: Backend,
}

enum Backend {
    Sqlite {
        /// Holds the database file's directory until the test ends.
        _dir: tempfile::TempDir,
    },
    Postgres,
}

impl Db {
    /// A store on a fresh SQLite file.
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("reprise.db").display());
        Db {
            store: open(&url).await,
            url,
            backend: Backend::Sqlite { _dir: dir },
        }
    }

    /// A store on a fresh database named `name` of this process's Postgres cluster.
    pub async fn postgres(name: &str) -> Db {
        let url = crate::common::postgres::database(name).await;
        Db {
            store: open(&url).await,
            url,
            backend: Backend::Postgres,
        }
    }

    /// Another handle on the same database, as a second host process would open it.
    pub async fn open_again(&self) -> Arc<dyn Store> {
        open(&self.url).await
    }

    /// Runs a statement behind the store's back, as someone with a database shell might.
    pub async fn execute(&self, sql: &'static str) {
        match self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("raw sqlite connection");
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
                conn.close().await.expect("close raw connection");
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("raw postgres connection");
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
                conn.close().await.expect("close raw connection");
            }
        }
    }
}

async fn open(url: &str) -> Arc<dyn Store> {
    open_store(url, Durability::Process)
        .await
        .unwrap_or_else(|err| panic!("open {url}: {err}"))
}

pub fn new_workflow(id: &str) -> NewWorkflow {
    NewWorkflow {
        max_recovery_attempts: 3,
        ..NewWorkflow::new(id, "greet", r#"{"who":"world"}"#, "exec-a", "sha256:abc")
    }
}

pub fn queued(id: &str, queue: &str, priority: i32) -> NewWorkflow {
    NewWorkflow {
        queue_name: Some(queue.to_owned()),
        priority,
        ..new_workflow(id)
    }
}

/// A trap record without a grown memory limit.
pub fn trap<'a>(class: &'a str, message: &'a str) -> reprise_host::store::TrapRecord<'a> {
    reprise_host::store::TrapRecord {
        class,
        message,
        memory_limit: None,
        epoch: None,
    }
}

/// Begins an execution under the workflow's current epoch (what a recovery that just read it
/// does); the new execution count. An unknown workflow is the store's error.
pub async fn begin(
    store: &(impl Store + ?Sized),
    id: &str,
    executor_id: &str,
) -> Result<u32, reprise_host::store::StoreError> {
    let epoch = store.get_workflow(id).await?.map_or(0, |w| w.epoch);
    Ok(store
        .begin_execution(id, executor_id, epoch)
        .await?
        .executions)
}

pub fn step(workflow_id: &str, function_id: u32) -> StepRecord {
    StepRecord {
        workflow_id: workflow_id.to_owned(),
        function_id,
        name: format!("step-{function_id}"),
        output: Some(format!("{function_id}")),
        error: None,
        attempts: 1,
        started_at: 1_000 + i64::from(function_id),
        completed_at: 2_000 + i64::from(function_id),
        epoch: None,
        committed_epoch: None,
        args: None,
    }
}

pub fn claim(queue: &str, executor_id: &str, max: u32) -> QueueClaim {
    QueueClaim {
        queue: queue.to_owned(),
        executor_id: executor_id.to_owned(),
        max,
        concurrency: None,
        rate_limit: None,
        partitioned: false,
    }
}

pub fn ids(records: Vec<WorkflowRecord>) -> Vec<String> {
    records.into_iter().map(|r| r.id).collect()
}

pub async fn status_of(store: &dyn Store, id: &str) -> WorkflowStatus {
    store
        .get_workflow(id)
        .await
        .expect("get")
        .expect("exists")
        .status
}
