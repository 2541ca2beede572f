//! Messages, events and streams (DBOS's `send`/`recv`, `set_event`/`get_event` and streams):
//! how a workflow waits for the world and reports to it. Each call is recorded like a step,
//! so a replay returns what the first run got and never sends, consumes or appends twice.
//! They are made from workflow code, not from a step (only [`write_stream`] may be, and
//! then it is not recorded).
//!
//! ```ignore
//! #[workflow]
//! fn approval(request: String) -> Result<String, reprise_guest::Error> {
//!     set_event("status", &"waiting")?;
//!     write_stream("log", &format!("asked to approve {request}"))?;
//!     match recv::<bool>("decision", Duration::from_secs(86_400))? {
//!         Some(true) => Ok("approved".into()),
//!         Some(false) => Ok("rejected".into()),
//!         None => Ok("timed out".into()),   // a day without an answer
//!     }
//! }
//! ```

use std::any::type_name;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::backend as durable;
use crate::runtime::step_status;
use crate::topics::Undecodable;

/// Whole milliseconds, rounded up and saturating, as `sleep` counts them: a timeout of 1 ns
/// still waits, it never rounds down to "do not wait".
fn millis(timeout: Duration) -> u64 {
    u64::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Refuses a call made inside a step: the host records these calls at the workflow's
/// positions, and a step's body may run several times or not at all on a replay.
fn from_workflow_code(call: &str) -> Result<(), Error> {
    match step_status() {
        Some(step) => Err(Error::msg(format!(
            "{call} called inside step '{}': call it from the workflow's body, not from a step",
            step.step_name
        ))),
        None => Ok(()),
    }
}

fn json(what: &str, value: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::msg(format!("{what} does not serialize: {e}")))
}

/// Decodes what a wait got; what does not decode is an [`Undecodable`] error value.
fn decoded<T: DeserializeOwned>(what: &str, bytes: Option<Vec<u8>>) -> Result<Option<T>, Error> {
    bytes
        .map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| {
                Error::from(Undecodable {
                    what: what.to_owned(),
                    expected: type_name::<T>(),
                    message: e.to_string(),
                    json: String::from_utf8_lossy(&bytes).into_owned(),
                })
            })
        })
        .transpose()
}

/// Sends `message` to the workflow `workflow_id` on `topic`, where its [`recv`] of that topic
/// takes it. Recorded with the send in one commit: a replay does not send again. Sending to
/// a workflow that does not exist is an error.
///
/// ```ignore
/// send("approval-42", "decision", &serde_json::json!({"approve": true, "by": "ada"}))?;
/// ```
pub fn send(workflow_id: &str, topic: &str, message: &impl Serialize) -> Result<(), Error> {
    from_workflow_code("send")?;
    let message = json("the message", message)?;
    durable::send(workflow_id, topic, &message).map_err(Error::msg)
}

/// The oldest message sent to this workflow on `topic`, waiting up to `timeout` for one;
/// `None` when none came in time. The message is consumed and recorded in one commit, so it
/// is received exactly once, even across crashes; the deadline is recorded too, so after a
/// recovery only the rest of the timeout is waited. A wait longer than a moment gives back
/// the workflow's instance until the message (or the deadline) comes.
///
/// On a topic whose type the component declares ([`crate::Topic`]), the host refuses a send
/// that does not match it, so every message here decodes. On any other topic a message that
/// does not decode as `T` is consumed all the same (a replay sees the same), and `recv`
/// returns it as an [`Undecodable`] error value: the workflow can handle it and go on.
///
/// ```ignore
/// let Some(order): Option<Order> = recv("orders", Duration::from_secs(60))? else {
///     bail!("no order within a minute");
/// };
/// ```
pub fn recv<T: DeserializeOwned>(topic: &str, timeout: Duration) -> Result<Option<T>, Error> {
    from_workflow_code("recv")?;
    let received = durable::recv(topic, millis(timeout)).map_err(Error::msg)?;
    decoded(&format!("the message on topic {topic:?}"), received)
}

/// Publishes `value` as the latest value of this workflow's event `key`, for others to read
/// with [`get_event`] (or the API's `GET /workflows/{id}/events/{key}`).
/// Setting it again replaces the value: readers see the latest.
pub fn set_event(key: &str, value: &impl Serialize) -> Result<(), Error> {
    from_workflow_code("set_event")?;
    let value = json("the event value", value)?;
    durable::set_event(key, &value).map_err(Error::msg)
}

/// The latest value of workflow `workflow_id`'s event `key`, waiting up to `timeout` for it
/// to be set; `None` when it is not set in time. Recorded: a replay returns what was read.
///
/// ```ignore
/// let ready: Option<bool> = get_event("publisher-1", "ready", Duration::from_secs(30))?;
/// ```
pub fn get_event<T: DeserializeOwned>(
    workflow_id: &str,
    key: &str,
    timeout: Duration,
) -> Result<Option<T>, Error> {
    from_workflow_code("get_event")?;
    let value = durable::get_event(workflow_id, key, millis(timeout)).map_err(Error::msg)?;
    decoded(&format!("event {key:?} of {workflow_id}"), value)
}

/// Appends `value` to this workflow's stream `key`, which readers outside read from any
/// offset while the workflow runs and after it ended. From workflow code it is recorded
/// (written exactly once); from an inline step it is written at once, at least once (a
/// retried attempt writes again). Not available in an isolated step.
pub fn write_stream(key: &str, value: &impl Serialize) -> Result<(), Error> {
    let value = json("the stream value", value)?;
    durable::write_stream(key, &value).map_err(Error::msg)
}

/// Ends this workflow's stream `key` for its readers; nothing more can be written to it.
/// The workflow's end ends all its streams. Writing to a closed stream is an error.
pub fn close_stream(key: &str) -> Result<(), Error> {
    from_workflow_code("close_stream")?;
    durable::close_stream(key).map_err(Error::msg)
}

/// When a schedule started this workflow: the time its firing was due, and when the workflow
/// started (DBOS's scheduled and actual time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// The firing's scheduled time, in milliseconds since the Unix epoch.
    pub scheduled_at_ms: u64,
    /// When the workflow started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

/// For a workflow a schedule started, its scheduled and actual start time; `None` otherwise.
pub fn scheduled() -> Option<Scheduled> {
    durable::scheduled_time().map(|(scheduled_at_ms, started_at_ms)| Scheduled {
        scheduled_at_ms,
        started_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_whole_milliseconds_and_saturate() {
        assert_eq!(millis(Duration::ZERO), 0);
        assert_eq!(millis(Duration::from_nanos(1)), 1);
        assert_eq!(millis(Duration::from_micros(1_500)), 2);
        assert_eq!(millis(Duration::from_secs(86_400)), 86_400_000);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }

    #[test]
    fn what_does_not_decode_names_the_type_expected() {
        assert_eq!(decoded::<u32>("it", Some(b"7".to_vec())).unwrap(), Some(7));
        assert_eq!(decoded::<u32>("it", None).unwrap(), None);
        let err = decoded::<u32>("the message on topic \"n\"", Some(br#""x""#.to_vec()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("the message on topic \"n\" does not decode: expected u32"),
            "{err}"
        );
    }
}
