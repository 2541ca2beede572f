//! A step as the protocol sees it: the attempt in progress with its retry policy, the
//! outcome handed to the guest, and the checks on what a guest returns.

use std::time::Duration;

use crate::bindings::{AttemptInfo, StepFailure, StepOptions, StepOutcome};
use crate::runtime::step_limits::SlotGuard;
use reprise_store::StepRecord;

/// A step between begin-step and its final end-step.
pub(crate) struct PendingStep {
    pub(crate) function_id: u32,
    pub(crate) name: String,
    pub(crate) options: StepOptions,
    pub(crate) max_attempts: u32,
    pub(crate) attempt: u32,
    pub(crate) errors: Vec<String>,
    pub(crate) started_at: i64,
    /// When the first attempt began, for the step's duration.
    pub(crate) began: std::time::Instant,
    /// Each attempt's time limit, when the step set one (isolated steps only).
    pub(crate) timeout: Option<Duration>,
    /// The slot of a limited step, held through its retries and given back when the step
    /// is dropped: after its outcome is recorded, or with the execution. Only held.
    #[allow(dead_code)]
    pub(crate) slot: Option<SlotGuard>,
}

impl PendingStep {
    /// The attempt in progress, as the guest sees it.
    pub(crate) fn attempt_info(&self) -> AttemptInfo {
        AttemptInfo {
            attempt: self.attempt,
            max_attempts: self.max_attempts,
        }
    }

    /// DBOS's backoff: interval × rate^(attempt − 1).
    pub(crate) fn backoff(&self) -> Duration {
        let retry = &self.options.retry;
        let factor = retry
            .backoff_rate
            .max(0.0)
            .powi(self.attempt.saturating_sub(1) as i32);
        let ms = (retry.interval_ms as f64 * factor).clamp(0.0, 24.0 * 3600.0 * 1000.0);
        Duration::from_millis(ms as u64)
    }
}

/// A recorded step as the outcome handed to the guest, replayed or fresh.
pub(crate) fn outcome_of(step: StepRecord) -> StepOutcome {
    match (step.output, step.error) {
        (Some(value), _) => StepOutcome::Value(value.into_bytes()),
        (None, Some(failure)) => StepOutcome::Failed(StepFailure {
            message: failure.message,
            attempt_errors: failure.attempt_errors,
            retries_exhausted: failure.retries_exhausted,
        }),
        (None, None) => StepOutcome::Value(b"null".to_vec()),
    }
}

/// Checks a guest-produced value: valid UTF-8 JSON within the output cap.
pub(crate) fn checked_json(bytes: Vec<u8>, cap: u64, what: &str) -> Result<String, String> {
    if bytes.len() as u64 > cap {
        return Err(format!(
            "{what} output of {} bytes exceeds the limit of {cap} bytes",
            bytes.len()
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{what} output is not UTF-8"))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| format!("{what} output is not valid JSON: {e}"))?;
    Ok(text)
}
