//! The persisted format of a workflow's history: the names the host records its own durable
//! calls under, and how a wait's outcome is encoded. Every history row stores these, and the
//! guest SDK's test host must record exactly what the host does, so they are defined once here.
//!
//! A user step is recorded under the name the guest gave it; the host's own calls all start
//! with `reprise.` so they can never be mistaken for one.

use serde::{Deserialize, Serialize};

/// What every name of a host-recorded call starts with.
pub const PREFIX: &str = "reprise.";

/// `sleep`: records the wake-up time (ms since the epoch).
pub const SLEEP: &str = "reprise.sleep";
/// The workflow's recorded clock.
pub const NOW: &str = "reprise.now";
/// The workflow's recorded random source.
pub const RANDOM: &str = "reprise.random";
/// `send` from workflow code.
pub const SEND: &str = "reprise.send";
/// The deadline of a `recv`, recorded before its outcome.
pub const RECV_DEADLINE: &str = "reprise.recv-deadline";
/// The deadline of a `get-event`, recorded before its outcome.
pub const GET_EVENT_DEADLINE: &str = "reprise.get-event-deadline";
/// What a write (send, set-event, stream write) records as its output.
pub const UNIT_OUTPUT: &str = "null";

/// The outcome of a `recv` on `topic`.
pub fn recv(topic: &str) -> String {
    format!("reprise.recv:{topic}")
}

/// The outcome of a `get-event` of `key`.
pub fn get_event(key: &str) -> String {
    format!("reprise.get-event:{key}")
}

/// A `set-event` of `key`.
pub fn set_event(key: &str) -> String {
    format!("reprise.set-event:{key}")
}

/// A write to stream `key` (`closing`: the close).
pub fn stream_write(key: &str, closing: bool) -> String {
    let verb = if closing { "close" } else { "write" };
    format!("reprise.{verb}-stream:{key}")
}

/// The start of a child running `workflow`; records the child's id.
pub fn start_child(workflow: &str) -> String {
    format!("reprise.start-child:{workflow}")
}

/// Awaiting the result of child `id`.
pub fn await_child(id: &str) -> String {
    format!("reprise.await-child:{id}")
}

/// How the outcome of a wait (`recv`, `get-event`) is recorded at its position: the value
/// received, or that its deadline passed first. `{"value": …}` or `{"timed_out": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Waited {
    /// What came.
    Value {
        /// The message or event value.
        value: serde_json::Value,
    },
    /// Nothing came in time.
    TimedOut {
        /// Always true.
        timed_out: bool,
    },
}

impl Waited {
    /// The recorded text of a wait that received `json` (JSON text).
    pub fn value_text(json: &str) -> Result<String, serde_json::Error> {
        let value = serde_json::from_str(json)?;
        serde_json::to_string(&Waited::Value { value })
    }

    /// The recorded text of a wait whose deadline passed.
    pub fn timed_out_text() -> String {
        r#"{"timed_out":true}"#.to_string()
    }

    /// The value received, or `None` for a timeout.
    pub fn into_value(self) -> Option<serde_json::Value> {
        match self {
            Waited::Value { value } => Some(value),
            Waited::TimedOut { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_received_null_is_told_from_a_timeout() {
        let null: Waited =
            serde_json::from_str(&Waited::value_text("null").expect("json")).expect("decodes");
        assert_eq!(null.into_value(), Some(serde_json::Value::Null));
        let timeout: Waited = serde_json::from_str(&Waited::timed_out_text()).expect("decodes");
        assert_eq!(timeout.into_value(), None);
    }

    /// These strings are in every database written so far: changing one strands every
    /// in-flight workflow that recorded it.
    #[test]
    fn recorded_names_are_the_ones_already_stored() {
        assert_eq!(recv("ship"), "reprise.recv:ship");
        assert_eq!(get_event("k"), "reprise.get-event:k");
        assert_eq!(set_event("k"), "reprise.set-event:k");
        assert_eq!(stream_write("s", false), "reprise.write-stream:s");
        assert_eq!(stream_write("s", true), "reprise.close-stream:s");
        assert_eq!(start_child("sub"), "reprise.start-child:sub");
        assert_eq!(await_child("c1"), "reprise.await-child:c1");
        for name in [SLEEP, NOW, RANDOM, SEND, RECV_DEADLINE, GET_EVENT_DEADLINE] {
            assert!(name.starts_with(PREFIX), "{name}");
        }
    }
}
