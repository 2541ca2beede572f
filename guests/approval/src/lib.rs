//! Human in the loop: an approval that reports its progress as the event `status`, streams
//! its log on `log`, waits up to its timeout (a day unless told) for a decision on the topic
//! `decision`, and escalates when none comes.
//!
//! From outside (the README's guide walks through it):
//!
//! ```text
//! reprise run approval '{"request": "deploy", "approver": "ada"}' --id deploy-1 &
//! reprise workflow event deploy-1 status            # "waiting"
//! reprise workflow send deploy-1 decision '{"approve": true, "by": "ada"}'
//! reprise workflow stream deploy-1 log              # the log, line by line
//! ```
//!
//! The other workflows are small uses of each call, for the host's tests.

use std::time::Duration;

use reprise_guest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const A_DAY_MS: u64 = 86_400_000;

fn a_day() -> u64 {
    A_DAY_MS
}

/// What to approve, and who should.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub request: String,
    pub approver: String,
    /// How long to wait for a decision before escalating.
    #[serde(default = "a_day")]
    pub timeout_ms: u64,
}

/// The message a person sends on the topic `decision`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub approve: bool,
    pub by: String,
    #[serde(default)]
    pub comment: String,
}

/// How it ended: `approved`, `rejected` or `escalated`, by whom, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalOutcome {
    pub outcome: String,
    pub by: String,
    pub comment: String,
}

/// Hands the request to whoever is above the approver; here it only says so. A step: in a
/// real component it would page someone, and must do so once.
#[step(max_attempts = 3, interval_ms = 1000)]
fn escalate(request: String, approver: String) -> Result<String, String> {
    info!("{approver} did not answer about {request:?}: escalating");
    Ok(format!("escalated past {approver}"))
}

/// Asks `approver` to approve `request` and waits for the answer.
#[workflow]
pub fn approval(ask: Request) -> Result<ApprovalOutcome, Error> {
    set_event("status", &"waiting")?;
    write_stream(
        "log",
        &format!("asked {} to approve {:?}", ask.approver, ask.request),
    )?;
    let decision = recv::<Decision>("decision", Duration::from_millis(ask.timeout_ms))?;
    let outcome = match decision {
        Some(decision) => {
            let outcome = if decision.approve {
                "approved"
            } else {
                "rejected"
            };
            write_stream("log", &format!("{outcome} by {}", decision.by))?;
            ApprovalOutcome {
                outcome: outcome.into(),
                by: decision.by,
                comment: decision.comment,
            }
        }
        None => {
            let note = escalate(ask.request.clone(), ask.approver.clone())?;
            write_stream("log", &note)?;
            ApprovalOutcome {
                outcome: "escalated".into(),
                by: "timeout".into(),
                comment: note,
            }
        }
    };
    set_event("status", &outcome.outcome)?;
    close_stream("log")?;
    Ok(outcome)
}

/// How many messages to take, and how long to wait for each.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Echo {
    pub count: u32,
    pub timeout_ms: u64,
}

/// Receives up to `count` messages on the topic `in`, stopping at the first wait that times
/// out: the messages, in the order received.
#[workflow]
pub fn echo_messages(echo: Echo) -> Result<Vec<Value>, Error> {
    let mut got = Vec::new();
    for _ in 0..echo.count {
        match recv::<Value>("in", Duration::from_millis(echo.timeout_ms))? {
            Some(message) => got.push(message),
            None => break,
        }
    }
    Ok(got)
}

/// A message to send from a workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notify {
    pub to: String,
    pub topic: String,
    pub message: Value,
}

/// Sends one message to another workflow.
#[workflow]
pub fn notify(note: Notify) -> Result<(), Error> {
    send(&note.to, &note.topic, &note.message)
}

/// An event key and the values to set it to, one after another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Publish {
    pub key: String,
    pub values: Vec<Value>,
}

/// Sets the event `key` to each value in turn (readers see the latest): how many were set.
#[workflow]
pub fn publish_events(publish: Publish) -> Result<usize, Error> {
    for value in &publish.values {
        set_event(&publish.key, value)?;
    }
    Ok(publish.values.len())
}

/// Whose event to read, and how long to wait for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitEvent {
    pub workflow_id: String,
    pub key: String,
    pub timeout_ms: u64,
}

/// Another workflow's event, or null when it is not set in time.
#[workflow]
pub fn wait_event(wait: WaitEvent) -> Result<Option<Value>, Error> {
    get_event(
        &wait.workflow_id,
        &wait.key,
        Duration::from_millis(wait.timeout_ms),
    )
}

/// Another workflow's output, awaited as a parent awaits a child's, by any id.
#[workflow]
pub fn await_output(id: String) -> Result<Value, String> {
    ChildHandle::<Value>::from_id(id)
        .result()
        .map_err(|e| e.to_string())
}

reprise_guest::export!(
    workflows = [
        approval,
        echo_messages,
        notify,
        publish_events,
        wait_event,
        await_output
    ],
    steps = [escalate],
);
