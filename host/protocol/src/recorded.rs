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

/// The marker `patched(id)` records where new code first took the patched branch.
pub fn patch(id: &str) -> String {
    format!("{PATCH_PREFIX}{id}")
}

/// The record of an operator's move of the workflow to other code: no call of the code claims
/// it (a replay steps over it); its output says from and to which version.
pub const UPGRADE: &str = "reprise.upgrade";

/// What every patch marker's name starts with.
pub const PATCH_PREFIX: &str = "reprise.patch:";

/// What kind of durable call a recorded name is, stored beside it (`kind`) and shown by
/// `replay` and `upgrade-check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Step,
    Sleep,
    Now,
    Random,
    Send,
    RecvDeadline,
    Recv,
    GetEventDeadline,
    GetEvent,
    SetEvent,
    Stream,
    StartChild,
    AwaitChild,
    Patch,
    Upgrade,
    /// A `reprise.` name this version does not know (written by a newer host).
    Other,
}

impl Kind {
    /// The kind as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Step => "step",
            Kind::Sleep => "sleep",
            Kind::Now => "now",
            Kind::Random => "random",
            Kind::Send => "send",
            Kind::RecvDeadline => "recv-deadline",
            Kind::Recv => "recv",
            Kind::GetEventDeadline => "get-event-deadline",
            Kind::GetEvent => "get-event",
            Kind::SetEvent => "set-event",
            Kind::Stream => "stream",
            Kind::StartChild => "child",
            Kind::AwaitChild => "await-child",
            Kind::Patch => "patch",
            Kind::Upgrade => "upgrade",
            Kind::Other => "other",
        }
    }
}

/// The kind of the call recorded under `name`: a name without the `reprise.` prefix is a
/// user's step.
pub fn kind_of(name: &str) -> Kind {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return Kind::Step;
    };
    let verb = rest.split_once(':').map_or(rest, |(verb, _)| verb);
    match verb {
        "sleep" => Kind::Sleep,
        "now" => Kind::Now,
        "random" => Kind::Random,
        "send" => Kind::Send,
        "recv-deadline" => Kind::RecvDeadline,
        "recv" => Kind::Recv,
        "get-event-deadline" => Kind::GetEventDeadline,
        "get-event" => Kind::GetEvent,
        "set-event" => Kind::SetEvent,
        "write-stream" | "close-stream" => Kind::Stream,
        "start-child" => Kind::StartChild,
        "await-child" => Kind::AwaitChild,
        "patch" => Kind::Patch,
        "upgrade" => Kind::Upgrade,
        _ => Kind::Other,
    }
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
        assert_eq!(patch("fix-1"), "reprise.patch:fix-1");
        for name in [SLEEP, NOW, RANDOM, SEND, RECV_DEADLINE, GET_EVENT_DEADLINE] {
            assert!(name.starts_with(PREFIX), "{name}");
        }
    }

    #[test]
    fn every_recorded_name_has_its_kind() {
        let cases = [
            ("charge-card", Kind::Step),
            (SLEEP, Kind::Sleep),
            (NOW, Kind::Now),
            (RANDOM, Kind::Random),
            (SEND, Kind::Send),
            (RECV_DEADLINE, Kind::RecvDeadline),
            (&recv("ship:fast"), Kind::Recv),
            (GET_EVENT_DEADLINE, Kind::GetEventDeadline),
            (&get_event("k"), Kind::GetEvent),
            (&set_event("k"), Kind::SetEvent),
            (&stream_write("s", false), Kind::Stream),
            (&stream_write("s", true), Kind::Stream),
            (&start_child("sub"), Kind::StartChild),
            (&await_child("c1"), Kind::AwaitChild),
            (&patch("p"), Kind::Patch),
            (UPGRADE, Kind::Upgrade),
            ("reprise.teleport", Kind::Other),
        ];
        for (name, kind) in cases {
            assert_eq!(kind_of(name), kind, "{name}");
        }
    }
}
