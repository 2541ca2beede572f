//! How the writer runs a batch: its bulk kinds (new workflows, step checkpoints, endings)
//! written one statement per chunk instead of one per request, the rest request by request.
//! The statements single requests need beyond [`Dialect`]'s are in `statements.rs`.

use std::collections::HashMap;

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use super::failure::batch_wide;
use super::outcome::{Outcome, Reply};
use super::request::Request;
use crate::rows::records_by_id;
use crate::shared::{Dialect, insert_columns, step_columns, workflow_columns};
use crate::written::{StepRow, ending_columns, epoch_value, initial_state};
use crate::{Inserted, NewWorkflow, StoreError, WorkflowEnd, WorkflowRecord, now_ms};

/// Most new workflows one INSERT carries (22 bound values each).
const INSERTS_PER_STATEMENT: usize = 64;
/// Most rows one multi-row INSERT carries (8 bound values each, well under SQLite's limit).
const STEPS_PER_STATEMENT: usize = 256;
/// Most endings one UPDATE carries.
const FINISHES_PER_STATEMENT: usize = 128;

/// A batch in the order it is written: new workflows first (so a request that follows its
/// workflow's creation in the same batch finds the row), then the other requests in arrival
/// order, then step checkpoints, then endings. The bulk kinds go in as one statement each — a
/// statement per batch instead of a round trip to SQLite's worker thread per request. Moving
/// steps and endings last is safe: a step is only written after its workflow's row was
/// committed, and an ending only after its last step was.
// One phase per request kind and batch: their size does not matter next to a box per request.
#[allow(clippy::large_enum_variant)]
pub(super) enum Phase {
    Inserts(Vec<(Box<NewWorkflow>, Reply<Inserted>)>),
    One(Request),
    Steps(Vec<(StepRow, Reply<()>)>),
    Finishes(Vec<Finish>),
}

pub(super) fn plan(requests: impl Iterator<Item = Request>) -> Vec<Phase> {
    let (mut inserts, mut steps, mut finishes, mut phases) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for request in requests {
        match request {
            Request::InsertWorkflow { new, reply } => inserts.push((new, reply)),
            Request::RecordStep { step, reply } => steps.push((step, reply)),
            Request::Finish {
                workflow_id,
                end,
                epoch,
                reply,
            } => finishes.push(Finish {
                workflow_id,
                end,
                epoch,
                reply,
            }),
            other => phases.push(Phase::One(other)),
        }
    }
    if !inserts.is_empty() {
        phases.insert(0, Phase::Inserts(inserts));
    }
    if !steps.is_empty() {
        phases.push(Phase::Steps(steps));
    }
    if !finishes.is_empty() {
        phases.push(Phase::Finishes(finishes));
    }
    phases
}

impl Phase {
    pub(super) async fn apply(self, conn: &mut SqliteConnection) -> Vec<Outcome> {
        match self {
            Phase::Inserts(inserts) => insert_together(conn, inserts).await,
            Phase::One(request) => vec![request.apply(conn).await],
            Phase::Steps(steps) => record_steps_together(conn, steps).await,
            Phase::Finishes(finishes) => finish_together(conn, finishes).await,
        }
    }

    /// Answers without running: an earlier statement of the batch poisoned it.
    pub(super) fn reject(self, copy: &impl Fn() -> StoreError) {
        match self {
            Phase::Inserts(inserts) => {
                for (_, reply) in inserts {
                    let _ = reply.send(Err(copy()));
                }
            }
            Phase::One(request) => request.reject(copy()),
            Phase::Steps(steps) => {
                for (_, reply) in steps {
                    let _ = reply.send(Err(copy()));
                }
            }
            Phase::Finishes(finishes) => {
                for finish in finishes {
                    let _ = finish.reply.send(Err(copy()));
                }
            }
        }
    }
}

/// Creates many workflows with one statement per [`INSERTS_PER_STATEMENT`]. Rows the statement
/// did not create (an existing id) or could not (a deduplication clash fails the whole
/// statement) go through [`Dialect::insert_workflow`], which gives each its own answer.
async fn insert_together(
    conn: &mut SqliteConnection,
    mut inserts: Vec<(Box<NewWorkflow>, Reply<Inserted>)>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(inserts.len());
    while !inserts.is_empty() {
        let chunk: Vec<_> = inserts
            .drain(..inserts.len().min(INSERTS_PER_STATEMENT))
            .collect();
        let mut created = HashMap::new();
        if chunk.len() > 1 {
            let now = now_ms();
            let mut insert = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO workflow_status (",
                insert_columns!(),
                ") "
            ));
            insert.push_values(chunk.iter(), |mut row, (new, _)| {
                let initial = initial_state(new, now);
                row.push_bind(new.id.as_str())
                    .push_bind(new.name.as_str())
                    .push_bind(initial.status.as_str())
                    .push_bind(new.input.as_str())
                    .push_bind(new.executor_id.as_str())
                    .push_bind(new.app_version.as_str())
                    .push_bind(new.instance.as_str())
                    .push_bind(new.config.as_str())
                    .push_bind(initial.executions)
                    .push_bind(i64::from(new.max_recovery_attempts))
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(new.queue_name.as_deref())
                    .push_bind(new.priority)
                    .push_bind(new.deduplication_id.as_deref())
                    .push_bind(initial.started_at)
                    .push_bind(new.parent_workflow_id.as_deref())
                    .push_bind(
                        new.timeout_ms
                            .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
                    )
                    .push_bind(initial.deadline_at)
                    .push_bind(new.not_before)
                    .push_bind(new.scheduled_at)
                    .push_bind(new.partition_key.as_deref());
            });
            insert.push(concat!(
                " ON CONFLICT (workflow_id) DO NOTHING RETURNING ",
                workflow_columns!()
            ));
            match insert.build().fetch_all(&mut *conn).await {
                Ok(rows) => created = records_by_id(&rows),
                Err(err) => {
                    if let Some(copy) = batch_wide(err) {
                        outcomes.extend(
                            chunk
                                .into_iter()
                                .map(|(_, reply)| Outcome::Inserted(reply, Box::new(Err(copy())))),
                        );
                        continue;
                    }
                    // A constraint failure undid only that statement: each row on its own.
                }
            }
        }
        for (new, reply) in chunk {
            let result = match created.remove(&new.id) {
                Some(record) => Ok(Inserted {
                    created: true,
                    record,
                }),
                None => Sqlite::insert_workflow(conn, &new, now_ms(), None).await,
            };
            outcomes.push(Outcome::Inserted(reply, Box::new(result)));
        }
    }
    outcomes
}

/// An ending waiting for its batch.
pub(super) struct Finish {
    workflow_id: String,
    end: WorkflowEnd,
    epoch: Option<u64>,
    reply: Reply<WorkflowRecord>,
}

/// Inserts many steps with one statement per [`STEPS_PER_STATEMENT`]; when a statement fails
/// on a constraint (a duplicate position, a vanished workflow) its rows are retried one by one
/// so each request gets its own verdict. A chunk holding a step whose epoch is stale goes one by
/// one too, and that step is refused there.
async fn record_steps_together(
    conn: &mut SqliteConnection,
    mut steps: Vec<(StepRow, Reply<()>)>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(steps.len());
    while !steps.is_empty() {
        let chunk: Vec<_> = steps
            .drain(..steps.len().min(STEPS_PER_STATEMENT))
            .collect();
        // A single step goes one by one anyway, where its own statement checks its epoch.
        let stale = if chunk.len() > 1 {
            stale_epochs(conn, &chunk).await
        } else {
            Ok(false)
        };
        let fenced = match stale {
            Ok(fenced) => fenced,
            Err(err) => match batch_wide(err) {
                Some(copy) => {
                    outcomes.extend(
                        chunk
                            .into_iter()
                            .map(|(_, reply)| Outcome::Unit(reply, Err(copy()))),
                    );
                    continue;
                }
                None => true,
            },
        };
        if chunk.len() > 1 && !fenced {
            let mut insert = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO operation_outputs (",
                step_columns!(),
                ") "
            ));
            insert.push_values(chunk.iter(), |mut row, (step, _)| {
                row.push_bind(step.workflow_id.as_str())
                    .push_bind(i64::from(step.function_id))
                    .push_bind(step.name.as_str())
                    .push_bind(step.output.as_deref())
                    .push_bind(step.error.as_deref())
                    .push_bind(i64::from(step.attempts))
                    .push_bind(step.started_at)
                    .push_bind(step.completed_at)
                    .push("(SELECT epoch FROM workflow_status WHERE workflow_id = ")
                    .push_bind_unseparated(step.workflow_id.as_str())
                    .push_unseparated(")")
                    .push_bind(step.kind)
                    .push_bind(step.args.as_deref());
            });
            match insert.build().execute(&mut *conn).await {
                Ok(_) => {
                    outcomes.extend(
                        chunk
                            .into_iter()
                            .map(|(_, reply)| Outcome::Unit(reply, Ok(()))),
                    );
                    continue;
                }
                Err(err) => {
                    if let Some(copy) = batch_wide(err) {
                        outcomes.extend(
                            chunk
                                .into_iter()
                                .map(|(_, reply)| Outcome::Unit(reply, Err(copy()))),
                        );
                        continue;
                    }
                    // A constraint failure undid only that statement: find the culprit(s).
                }
            }
        }
        for (step, reply) in chunk {
            outcomes.push(Outcome::Unit(reply, Sqlite::record_step(conn, &step).await));
        }
    }
    outcomes
}

/// Whether any of `steps` carries an epoch its workflow no longer has: one read of the
/// workflows' epochs inside the writer's transaction, which no one else writes meanwhile.
async fn stale_epochs(
    conn: &mut SqliteConnection,
    steps: &[(StepRow, Reply<()>)],
) -> Result<bool, sqlx::Error> {
    let fenced: Vec<_> = steps
        .iter()
        .filter(|(step, _)| step.epoch.is_some())
        .collect();
    if fenced.is_empty() {
        return Ok(false);
    }
    let mut query = QueryBuilder::<Sqlite>::new("SELECT count(*) FROM workflow_status w JOIN (");
    query.push_values(fenced.iter(), |mut row, (step, _)| {
        row.push_bind(step.workflow_id.as_str())
            .push_bind(step.epoch);
    });
    query.push(") AS v ON w.workflow_id = v.column1 WHERE w.epoch <> v.column2");
    let (stale,): (i64,) = query.build_query_as().fetch_one(&mut *conn).await?;
    Ok(stale > 0)
}

/// Ends many workflows with one statement per [`FINISHES_PER_STATEMENT`]. A workflow the
/// statement did not change (already ended, missing, or under another epoch) goes through
/// [`Dialect::finish_workflow`], which returns its first ending or says why not.
async fn finish_together(conn: &mut SqliteConnection, mut finishes: Vec<Finish>) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(finishes.len());
    while !finishes.is_empty() {
        let chunk: Vec<_> = finishes
            .drain(..finishes.len().min(FINISHES_PER_STATEMENT))
            .collect();
        let mut changed = HashMap::new();
        if chunk.len() > 1 {
            let mut update = QueryBuilder::<Sqlite>::new(
                "UPDATE workflow_status SET status = v.column2, output = v.column3, \
                 error = v.column4, updated_at = ",
            );
            update.push_bind(now_ms()).push(" FROM (");
            update.push_values(chunk.iter(), |mut row, finish| {
                let (status, output, error) = ending_columns(&finish.end);
                row.push_bind(finish.workflow_id.as_str())
                    .push_bind(status.as_str())
                    .push_bind(output)
                    .push_bind(error)
                    .push_bind(finish.epoch.map(epoch_value));
            });
            update.push(concat!(
                ") AS v WHERE workflow_status.workflow_id = v.column1 \
                 AND workflow_status.status IN ('ENQUEUED', 'PENDING') \
                 AND (v.column5 IS NULL OR workflow_status.epoch = v.column5) RETURNING ",
                workflow_columns!()
            ));
            match update.build().fetch_all(&mut *conn).await {
                Ok(rows) => changed = records_by_id(&rows),
                Err(err) => {
                    if let Some(copy) = batch_wide(err) {
                        outcomes.extend(
                            chunk
                                .into_iter()
                                .map(|finish| Outcome::Record(finish.reply, Box::new(Err(copy())))),
                        );
                        continue;
                    }
                    // A constraint failure undid only that statement: each ending on its own.
                }
            }
        }
        for finish in chunk {
            let result = match changed.get(&finish.workflow_id) {
                Some(record) => Ok(record.clone()),
                None => {
                    Sqlite::finish_workflow(conn, &finish.workflow_id, &finish.end, finish.epoch)
                        .await
                }
            };
            outcomes.push(Outcome::Record(finish.reply, Box::new(result)));
        }
    }
    outcomes
}
