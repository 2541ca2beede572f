//! Messages, events and streams from the workflow's side. Each call takes positions in the
//! history like a step: a send, an event set, a stream write and a receive are recorded in
//! the same commit as their write, so a replay never repeats them; a wait's deadline is
//! recorded first, so after a recovery only the rest is waited. A wait longer than a moment
//! parks the workflow: it gives back its instance until a write or the deadline wakes it.

use std::time::Duration;

use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::history::{Call, Position};
use crate::runtime::execution::interrupt::{host_failure, parked, violation};
use crate::runtime::execution::step::checked_json;
use crate::runtime::ids::{check_key, position_key, validate_workflow_id};
use crate::runtime::waiting::park::PARK_AFTER;
use crate::runtime::waiting::wake::Wake;
use reprise_protocol::recorded::{self, Waited};

use reprise_store::{Change, NewMessage, StepRecord, StoreError, now_ms};

/// A replayed write: `Ok` unless a failure was recorded.
fn replayed_write(step: StepRecord) -> Result<(), String> {
    match step.error {
        Some(failure) => Err(failure.message),
        None => Ok(()),
    }
}

/// A replayed wait: the value received, or `None` for its timeout.
fn replayed_wait(step: &StepRecord) -> wasmtime::Result<Option<Vec<u8>>> {
    let text = step.output.as_deref().unwrap_or("null");
    let waited: Waited = serde_json::from_str(text).map_err(|e| {
        host_failure(StoreError::Corrupt {
            table: "operation_outputs",
            message: format!("{} at {}: {e}", step.name, step.function_id),
        })
    })?;
    waited
        .into_value()
        .map(|value| serde_json::to_vec(&value))
        .transpose()
        .map_err(|e| violation(format!("recorded value is not JSON: {e}")))
}

/// `send`: one position, recorded with the message.
pub(crate) async fn send(
    ctx: &mut WorkflowContext,
    destination: String,
    topic: String,
    message: Vec<u8>,
) -> wasmtime::Result<Result<(), String>> {
    // Refusals of the call itself are the same on every replay: nothing to record.
    if let Err(err) = validate_workflow_id(&destination) {
        return Ok(Err(err.to_string()));
    }
    if let Err(err) = check_key("topic", &topic) {
        return Ok(Err(err));
    }
    let message = match checked_json(message, ctx.limits.max_output_bytes, "message") {
        Ok(text) => text,
        Err(err) => return Ok(Err(err)),
    };
    let name = recorded::SEND;
    let call = Call::with_args(name, &[destination.as_bytes(), topic.as_bytes()]);
    let function_id = match ctx.claim(&call)? {
        Position::Replay(step) => return Ok(replayed_write(step)),
        Position::Execute(function_id) => function_id,
    };
    ctx.may_act().await?;
    let started_at = now_ms();
    let host = ctx.host.clone();
    let unknown = |why: String| format!("cannot send to {destination}: {why}");
    let refused = match host
        .out_of_reach(&destination)
        .await
        .map_err(host_failure)?
    {
        Some(why) => unknown(why),
        None => match ctx.hold(message.len()).await? {
            Err(quota) => quota,
            Ok(()) => {
                let new = NewMessage {
                    message_id: format!("{}#{}", ctx.info.id, position_key(ctx.run, function_id)),
                    destination_id: destination.clone(),
                    topic,
                    message,
                };
                let record = ctx.step_record(
                    function_id,
                    name,
                    Some(recorded::UNIT_OUTPUT.into()),
                    None,
                    started_at,
                );
                match host.send_message(&new, &record).await {
                    Ok(Ok(())) => return Ok(Ok(())),
                    Ok(Err(mismatch)) => unknown(mismatch),
                    Err(StoreError::UnknownWorkflow(id)) => {
                        unknown(format!("no workflow with id {id}"))
                    }
                    Err(err) => return Err(host_failure(err)),
                }
            }
        },
    };
    // Recorded, so a replay fails the same way even once that id exists or is reachable.
    refuse_at(ctx, function_id, name, refused, started_at).await
}

/// Records that the write at `function_id` (named `name`) was refused with `message`, so a
/// replay is refused alike, and hands the guest the message.
async fn refuse_at(
    ctx: &mut WorkflowContext,
    function_id: u32,
    name: &str,
    message: String,
    started_at: i64,
) -> wasmtime::Result<Result<(), String>> {
    let failed = ctx.step_record(function_id, name, None, Some(message.clone()), started_at);
    ctx.record(&failed).await?;
    Ok(Err(message))
}

/// What a wait is for: a message on this workflow's topic, or another workflow's event.
enum Awaited {
    Message { topic: String },
    Event { workflow_id: String, key: String },
}

impl Awaited {
    /// Its two positions: the deadline's (with the timeout), then the outcome's.
    fn calls(&self, timeout_ms: u64) -> (Call, Call) {
        let timeout = timeout_ms.to_string();
        match self {
            Awaited::Message { topic } => (
                Call::with_args(recorded::RECV_DEADLINE, &[timeout.as_bytes()]),
                Call::named(recorded::recv(topic)),
            ),
            Awaited::Event { workflow_id, key } => (
                Call::with_args(recorded::GET_EVENT_DEADLINE, &[timeout.as_bytes()]),
                Call::with_args(
                    recorded::get_event(key),
                    &[workflow_id.as_bytes(), key.as_bytes()],
                ),
            ),
        }
    }

    /// The write that may end the wait of workflow `own_id`.
    fn change(&self, own_id: &str) -> Change {
        match self {
            Awaited::Message { topic } => Change::Message {
                workflow_id: own_id.to_string(),
                topic: topic.clone(),
            },
            Awaited::Event { workflow_id, key } => Change::Event {
                workflow_id: workflow_id.clone(),
                key: key.clone(),
            },
        }
    }

    /// What wakes the workflow once it is parked in this wait.
    fn into_wake(self, deadline: u64) -> Wake {
        match self {
            Awaited::Message { topic } => Wake::Message { topic, deadline },
            Awaited::Event { workflow_id, key } => Wake::Event {
                workflow_id,
                key,
                deadline,
            },
        }
    }
}

/// Takes what came for the wait at position `at` and records it there (with `timed_out`,
/// records the timeout when nothing came): the value, or `None`.
async fn take(
    ctx: &mut WorkflowContext,
    awaited: &Awaited,
    at: StepRecord,
    timed_out: bool,
) -> wasmtime::Result<Option<String>> {
    let host = ctx.host.clone();
    let (workflow_id, key) = match awaited {
        // Consumed and recorded in one commit by the store.
        Awaited::Message { topic } => {
            return host
                .receive_message(topic, &at, timed_out)
                .await
                .map_err(host_failure);
        }
        Awaited::Event { workflow_id, key } => (workflow_id, key),
    };
    let value = host
        .get_event(workflow_id, key)
        .await
        .map_err(host_failure)?;
    let output = match &value {
        Some(text) => Some(Waited::value_text(text).map_err(|e| {
            host_failure(StoreError::Corrupt {
                table: "workflow_events",
                message: format!("event {key:?} of {workflow_id}: {e}"),
            })
        })?),
        None if timed_out => Some(Waited::timed_out_text()),
        None => None,
    };
    if let Some(output) = output {
        ctx.record(&StepRecord {
            output: Some(output),
            ..at
        })
        .await?;
    }
    Ok(value)
}

/// `recv` and `get-event`: a recorded deadline, then the position that records what came.
async fn wait(
    ctx: &mut WorkflowContext,
    awaited: Awaited,
    timeout_ms: u64,
) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
    let (deadline_call, call) = awaited.calls(timeout_ms);
    let deadline: u64 = ctx
        .recorded(deadline_call, |_| async move {
            Ok((now_ms() as u64).saturating_add(timeout_ms))
        })
        .await?;
    let name = call.name.clone();
    let function_id = match ctx.claim(&call)? {
        Position::Replay(step) => return replayed_wait(&step).map(Ok),
        Position::Execute(function_id) => function_id,
    };
    let host = ctx.host.clone();
    let started_at = now_ms();
    loop {
        let now = now_ms() as u64;
        let timed_out = now >= deadline;
        let at = ctx.step_record(function_id, &name, None, None, started_at);
        if let Some(text) = take(ctx, &awaited, at, timed_out).await? {
            return Ok(Ok(Some(text.into_bytes())));
        }
        if timed_out {
            return Ok(Ok(None));
        }
        let remaining = Duration::from_millis(deadline - now);
        let change = awaited.change(&ctx.info.id);
        // A wait of a moment keeps the instance; a longer one gives it back (the parked wait
        // reads again after registering, so a write that raced this wait still wakes it).
        let woken = ctx
            .unless_cancelled(host.wait_for_change(change, remaining.min(PARK_AFTER)))
            .await?;
        if !woken && remaining > PARK_AFTER {
            return Err(parked(awaited.into_wake(deadline)));
        }
    }
}

/// `recv`.
pub(crate) async fn recv(
    ctx: &mut WorkflowContext,
    topic: String,
    timeout_ms: u64,
) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
    if let Err(err) = check_key("topic", &topic) {
        return Ok(Err(err));
    }
    wait(ctx, Awaited::Message { topic }, timeout_ms).await
}

/// `get-event`.
pub(crate) async fn get_event(
    ctx: &mut WorkflowContext,
    workflow_id: String,
    key: String,
    timeout_ms: u64,
) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
    if let Err(err) = validate_workflow_id(&workflow_id) {
        return Ok(Err(err.to_string()));
    }
    if let Err(err) = check_key("event key", &key) {
        return Ok(Err(err));
    }
    wait(ctx, Awaited::Event { workflow_id, key }, timeout_ms).await
}

/// `set-event`: one position, recorded with the value.
pub(crate) async fn set_event(
    ctx: &mut WorkflowContext,
    key: String,
    value: Vec<u8>,
) -> wasmtime::Result<Result<(), String>> {
    if let Err(err) = check_key("event key", &key) {
        return Ok(Err(err));
    }
    let value = match checked_json(value, ctx.limits.max_output_bytes, "event value") {
        Ok(text) => text,
        Err(err) => return Ok(Err(err)),
    };
    let name = recorded::set_event(&key);
    let function_id = match ctx.claim(&Call::named(name.as_str()))? {
        Position::Replay(step) => return Ok(replayed_write(step)),
        Position::Execute(function_id) => function_id,
    };
    if let Err(refused) = ctx.hold(value.len()).await? {
        return refuse_at(ctx, function_id, &name, refused, now_ms()).await;
    }
    let record = ctx.step_record(
        function_id,
        &name,
        Some(recorded::UNIT_OUTPUT.into()),
        None,
        now_ms(),
    );
    let host = ctx.host.clone();
    host.set_event(&key, &value, &record)
        .await
        .map_err(host_failure)?;
    Ok(Ok(()))
}

/// `write-stream` and `close-stream` (`value` none). From workflow code one position,
/// recorded with the write; from a step, written at once and not recorded.
pub(crate) async fn write_stream(
    ctx: &mut WorkflowContext,
    key: String,
    value: Option<Vec<u8>>,
) -> wasmtime::Result<Result<(), String>> {
    if let Err(err) = check_key("stream key", &key) {
        return Ok(Err(err));
    }
    let value = match value {
        Some(bytes) => match checked_json(bytes, ctx.limits.max_output_bytes, "stream value") {
            Ok(text) => Some(text),
            Err(err) => return Ok(Err(err)),
        },
        None => None,
    };
    let host = ctx.host.clone();
    let size = value.as_ref().map_or(0, String::len);
    let written = if ctx.pending().is_some() {
        // From a step: refused like any failed I/O of the attempt, which its policy retries.
        if let Err(refused) = ctx.hold(size).await? {
            return Ok(Err(refused));
        }
        host.write_stream(&key, value.as_deref(), None).await
    } else {
        let name = recorded::stream_write(&key, value.is_none());
        let function_id = match ctx.claim(&Call::named(name.as_str()))? {
            Position::Replay(step) => return Ok(replayed_write(step)),
            Position::Execute(function_id) => function_id,
        };
        if let Err(refused) = ctx.hold(size).await? {
            return refuse_at(ctx, function_id, &name, refused, now_ms()).await;
        }
        let record = ctx.step_record(
            function_id,
            &name,
            Some(recorded::UNIT_OUTPUT.into()),
            None,
            now_ms(),
        );
        match host
            .write_stream(&key, value.as_deref(), Some(&record))
            .await
        {
            Err(err @ StoreError::StreamClosed { .. }) => {
                let failed =
                    ctx.step_record(function_id, &name, None, Some(err.to_string()), now_ms());
                ctx.record(&failed).await?;
                Err(err)
            }
            other => other,
        }
    };
    match written {
        Ok(()) => Ok(Ok(())),
        Err(err @ StoreError::StreamClosed { .. }) => Ok(Err(err.to_string())),
        Err(err) => Err(host_failure(err)),
    }
}
