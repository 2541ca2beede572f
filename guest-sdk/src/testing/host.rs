//! The `durable` interface, natively: what the host would do for each call, against the
//! thread's [`State`] and in virtual time. Same signatures as the generated imports.

use crate::__bindings::reprise::workflow::types::{
    AttemptInfo, ChildFailure, ChildOptions, LogLevel, StepEnd, StepOptions, StepOutcome,
    StepStart, WorkflowInfo,
};
use crate::registry;
use reprise_protocol::recorded::{self, Waited};

use super::state::{Pending, failure};
use super::{Crash, with_state};

pub(crate) fn begin_step(name: &str, options: StepOptions) -> StepStart {
    with_state(|s| {
        if let Some(record) = s.claim(name) {
            return StepStart::Replay(record.outcome);
        }
        let max_attempts = if options.retry.retries_allowed {
            options.retry.max_attempts.max(1)
        } else {
            1
        };
        s.pending = Some(Pending {
            name: name.to_string(),
            options,
            attempt: 1,
            max_attempts,
            errors: Vec::new(),
        });
        *s.executions.entry(name.to_string()).or_default() += 1;
        *s.attempts.entry(name.to_string()).or_default() += 1;
        StepStart::Execute(AttemptInfo {
            attempt: 1,
            max_attempts,
        })
    })
}

pub(crate) fn end_step(output: Result<&[u8], &str>) -> StepEnd {
    let crash = with_state(|s| {
        let mut pending = s.pending.take().expect("end-step without begin-step");
        let injected = match s.failures.get_mut(&pending.name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Some(format!(
                    "injected failure of {} (attempt {})",
                    pending.name, pending.attempt
                ))
            }
            _ => None,
        };
        let output = match injected {
            Some(message) => Err(message),
            None => output.map(<[u8]>::to_vec).map_err(str::to_string),
        };
        let outcome = match output {
            Ok(json) => StepOutcome::Value(json),
            Err(message) => {
                pending.errors.push(message.clone());
                if pending.attempt < pending.max_attempts {
                    let retry = &pending.options.retry;
                    let exponent = i32::try_from(pending.attempt - 1).unwrap_or(i32::MAX);
                    let backoff = retry.interval_ms as f64 * retry.backoff_rate.powi(exponent);
                    let backoff = backoff.clamp(0.0, u64::MAX as f64) as u64;
                    s.now_ms = s.now_ms.saturating_add(backoff);
                    s.slept_ms = s.slept_ms.saturating_add(backoff);
                    pending.attempt += 1;
                    let info = AttemptInfo {
                        attempt: pending.attempt,
                        max_attempts: pending.max_attempts,
                    };
                    *s.attempts.entry(pending.name.clone()).or_default() += 1;
                    s.pending = Some(pending);
                    return Err(StepEnd::Retry(info));
                }
                StepOutcome::Failed(failure(&mut pending, message))
            }
        };
        let attempt_errors = match &outcome {
            StepOutcome::Failed(failure) => failure.attempt_errors.clone(),
            StepOutcome::Value(_) => pending.errors.clone(),
        };
        s.record(
            &pending.name,
            outcome.clone(),
            pending.attempt,
            attempt_errors,
        );
        let crash = s.crash_after_steps == Some(s.steps_recorded());
        if crash {
            s.crash_after_steps = None;
        }
        Ok((outcome, crash))
    });
    match crash {
        Err(retry) => retry,
        Ok((_, true)) => std::panic::panic_any(Crash),
        Ok((outcome, false)) => StepEnd::Done(outcome),
    }
}

/// Runs an isolated step's body here, as the fresh instance would.
pub(crate) fn run_isolated(
    name: &str,
    input: &[u8],
    _attempt: AttemptInfo,
) -> Result<Vec<u8>, String> {
    let def = registry::all_steps(&[])
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no step named {name:?} is defined"))?;
    (def.run)(input).map_err(|e| match e {
        crate::runtime::BodyError::InvalidInput(m) | crate::runtime::BodyError::Failed(m) => m,
    })
}

pub(crate) fn stubbed(step: &str, attempt: u32) -> Option<Result<Vec<u8>, String>> {
    // Called outside the borrow: a stub may log, or read the clock.
    let stub = with_state(|s| s.stubs.get(step).cloned())?;
    Some(stub(attempt).and_then(|v| serde_json::to_vec(&v).map_err(|e| e.to_string())))
}

pub(crate) fn sleep(duration_ms: u64) {
    with_state(|s| {
        if s.pending.is_some() {
            s.now_ms = s.now_ms.saturating_add(duration_ms);
            return;
        }
        let wake_at = s.recorded_u64(recorded::SLEEP, |s| s.now_ms.saturating_add(duration_ms));
        if wake_at > s.now_ms {
            s.slept_ms = s.slept_ms.saturating_add(wake_at - s.now_ms);
            s.now_ms = wake_at;
        }
    })
}

pub(crate) fn now_ms() -> u64 {
    with_state(|s| s.recorded_u64(recorded::NOW, |s| s.now_ms))
}

pub(crate) fn random_u64() -> u64 {
    with_state(|s| {
        s.recorded_u64(recorded::RANDOM, |s| {
            // splitmix64: varied values, the same in every test run.
            s.random = s.random.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s.random;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    })
}

pub(crate) fn log(level: LogLevel, message: &str) {
    let level = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    with_state(|s| s.logs.push((level.to_string(), message.to_string())));
}

/// Ends the run as the host does: the harness starts the next one (see
/// `Harness::continued_as_new`).
pub(crate) fn continue_as_new(input: &[u8]) {
    std::panic::panic_any(super::ContinuedAsNew(input.to_vec()));
}

/// As the host decides it: the marker's position replayed, or new code recording it; `false`
/// where the history recorded another call (it was recorded before the patch).
pub(crate) fn patched(id: &str) -> bool {
    with_state(|s| {
        assert!(
            s.pending.is_none(),
            "patched({id:?}) inside a step: only workflow code may branch on a patch"
        );
        let name = recorded::patch(id);
        match s.history.get(s.position) {
            Some(record) if record.name != name => false,
            Some(_) => {
                s.position += 1;
                true
            }
            None => {
                let unit = recorded::UNIT_OUTPUT.as_bytes().to_vec();
                s.record(&name, StepOutcome::Value(unit), 1, Vec::new());
                true
            }
        }
    })
}

/// As the host makes it: the workflow and the position the pending step is recorded at.
pub(crate) fn idempotency_key() -> Option<String> {
    with_state(|s| {
        s.pending
            .as_ref()
            .map(|_| format!("{}/{}", s.workflow_id, s.position))
    })
}

pub(crate) fn workflow_info() -> WorkflowInfo {
    with_state(|s| WorkflowInfo {
        id: s.workflow_id.clone(),
        name: s.workflow_name.clone(),
        recovery_attempt: s.runs.saturating_sub(1),
        executor_id: "test".into(),
        app_version: "test".into(),
        instance: "test".into(),
        config: s.config.clone().into_iter().collect(),
    })
}

pub(crate) fn start_child(
    workflow: &str,
    _input: &[u8],
    _options: &ChildOptions,
) -> Result<String, String> {
    Err(format!(
        "child workflow {workflow:?}: child workflows do not run under the test harness; test \
         the child's workflow function on its own"
    ))
}

pub(crate) fn await_child(id: &str) -> Result<Vec<u8>, ChildFailure> {
    Err(ChildFailure {
        id: id.to_string(),
        status: "ERROR".into(),
        message: "child workflows do not run under the test harness".into(),
    })
}

pub(crate) fn report_panic(_message: &str) {}

/// Natively a step's body runs on the test's thread and cannot be interrupted: a timeout is
/// the host's to enforce.
pub(crate) fn set_step_timeout(_timeout_ms: u64) {}

pub(crate) fn secret(name: &str) -> Result<String, String> {
    with_state(|s| {
        s.secrets.get(name).cloned().ok_or_else(|| {
            format!(
                "secret {name:?} is not granted to instance \"test\": add it to secrets (or \
                 --secret {name})"
            )
        })
    })
}

/// How a wait's outcome is recorded, exactly as the host records it.
fn waited(value: Option<&[u8]>) -> Vec<u8> {
    let text = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| Waited::value_text(v).ok())
        .unwrap_or_else(Waited::timed_out_text);
    text.into_bytes()
}

/// A recorded wait's value, `None` for its timeout.
fn unwaited(json: &[u8]) -> Option<Vec<u8>> {
    let recorded: Waited = serde_json::from_slice(json).ok()?;
    serde_json::to_vec(&recorded.into_value()?).ok()
}

/// The harness reads declared topics from the registry itself ([`crate::topics::find`]).
pub(crate) fn declare_topic(_topic: &str, _type_name: &str, _schema: &[u8]) {}

pub(crate) fn send(workflow_id: &str, topic: &str, message: &[u8]) -> Result<(), String> {
    with_state(|s| {
        s.recorded_json(recorded::SEND, |s| {
            s.sent
                .push((workflow_id.to_string(), topic.to_string(), message.to_vec()));
            recorded::UNIT_OUTPUT.as_bytes().to_vec()
        });
        Ok(())
    })
}

/// Takes the test's oldest message on `topic`; with none, the timeout passes in virtual time.
pub(crate) fn recv(topic: &str, timeout_ms: u64) -> Result<Option<Vec<u8>>, String> {
    with_state(|s| {
        let deadline = s.recorded_u64(recorded::RECV_DEADLINE, |s| {
            s.now_ms.saturating_add(timeout_ms)
        });
        let recorded = s.recorded_json(&recorded::recv(topic), |s| {
            let found = s.inbox.iter().position(|(t, _)| t == topic);
            match found.and_then(|i| s.inbox.remove(i)) {
                Some((_, message)) => waited(Some(&message)),
                None => {
                    s.slept_ms = s.slept_ms.saturating_add(deadline.saturating_sub(s.now_ms));
                    s.now_ms = s.now_ms.max(deadline);
                    waited(None)
                }
            }
        });
        Ok(unwaited(&recorded))
    })
}

pub(crate) fn set_event(key: &str, value: &[u8]) -> Result<(), String> {
    with_state(|s| {
        s.recorded_json(&recorded::set_event(key), |s| {
            s.events.insert(key.to_string(), value.to_vec());
            recorded::UNIT_OUTPUT.as_bytes().to_vec()
        });
        Ok(())
    })
}

/// Reads an event the test set for another workflow (or this workflow's own); with none, the
/// timeout passes in virtual time.
pub(crate) fn get_event(
    workflow_id: &str,
    key: &str,
    timeout_ms: u64,
) -> Result<Option<Vec<u8>>, String> {
    with_state(|s| {
        let deadline = s.recorded_u64(recorded::GET_EVENT_DEADLINE, |s| {
            s.now_ms.saturating_add(timeout_ms)
        });
        let recorded = s.recorded_json(&recorded::get_event(key), |s| {
            let own = (workflow_id == s.workflow_id)
                .then(|| s.events.get(key).cloned())
                .flatten();
            let other = s
                .others_events
                .get(&(workflow_id.to_string(), key.to_string()))
                .cloned();
            match own.or(other) {
                Some(value) => waited(Some(&value)),
                None => {
                    s.slept_ms = s.slept_ms.saturating_add(deadline.saturating_sub(s.now_ms));
                    s.now_ms = s.now_ms.max(deadline);
                    waited(None)
                }
            }
        });
        Ok(unwaited(&recorded))
    })
}

/// Appends to (or with `None` closes) a stream: recorded from workflow code, written at once
/// from a step.
fn stream_write(key: &str, value: Option<&[u8]>) -> Result<(), String> {
    with_state(|s| {
        let closed = s.streams.get(key).is_some_and(|(_, closed)| *closed);
        let write = |s: &mut super::state::State| {
            let stream = s.streams.entry(key.to_string()).or_default();
            match value {
                Some(value) => stream.0.push(value.to_vec()),
                None => stream.1 = true,
            }
        };
        if s.pending.is_some() {
            if closed {
                return Err(format!(
                    "stream {key:?} of workflow {} is closed",
                    s.workflow_id
                ));
            }
            write(s);
            return Ok(());
        }
        let recorded = s.recorded_json(&recorded::stream_write(key, value.is_none()), |s| {
            if closed {
                return b"closed".to_vec();
            }
            write(s);
            recorded::UNIT_OUTPUT.as_bytes().to_vec()
        });
        if recorded == b"closed" {
            return Err(format!(
                "stream {key:?} of workflow {} is closed",
                s.workflow_id
            ));
        }
        Ok(())
    })
}

pub(crate) fn write_stream(key: &str, value: &[u8]) -> Result<(), String> {
    stream_write(key, Some(value))
}

pub(crate) fn close_stream(key: &str) -> Result<(), String> {
    stream_write(key, None)
}

pub(crate) fn scheduled_time() -> Option<(u64, u64)> {
    with_state(|s| s.scheduled)
}
