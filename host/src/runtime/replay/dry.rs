//! The runtime as a dry replay sees it: nothing. A replay stops at the first call with
//! nothing recorded, before any of these is reached; should one be, it is refused.

use std::time::Duration;

use async_trait::async_trait;

use crate::bindings::AttemptInfo;
use crate::metrics::Metrics;
use crate::runtime::events::EventSink;
use crate::runtime::execution::interrupt::ProtocolViolation;
use crate::runtime::execution::services::Services;
use crate::runtime::options::StartRequest;
use crate::runtime::step_limits::Taken;
use crate::runtime::waiting::completion::Waited;
use reprise_store::{Change, NewMessage, StepRecord, StoreError};

/// Services that refuse every effect.
#[derive(Default)]
pub(crate) struct Nothing {
    metrics: Metrics,
    events: EventSink,
}

const REFUSED: StoreError = StoreError::DryRun("nothing is written, sent or waited for");

#[async_trait]
impl Services for Nothing {
    async fn take_step_slot(&self, _step: &str, _epoch: u64) -> Result<Taken, StoreError> {
        Ok(Taken::Unlimited)
    }

    async fn step_slot_rung(&self, _step: &str, _within: Duration) {}

    async fn may_act(&self, _epoch: u64) -> Result<(), StoreError> {
        Err(REFUSED)
    }

    async fn checkpoint(&self, _step: &StepRecord) -> Result<(), StoreError> {
        Err(REFUSED)
    }

    async fn start_child(
        &self,
        _request: StartRequest,
    ) -> Result<Result<String, String>, StoreError> {
        Err(REFUSED)
    }

    async fn out_of_reach(&self, _id: &str) -> Result<Option<String>, StoreError> {
        Err(REFUSED)
    }

    async fn wait_for(&self, _id: &str, _timeout: Duration) -> Result<Waited, StoreError> {
        Err(REFUSED)
    }

    async fn run_isolated(
        &self,
        _function_id: u32,
        name: &str,
        _input: Vec<u8>,
        _attempt: AttemptInfo,
        _timeout: Option<Duration>,
    ) -> Result<Result<Vec<u8>, String>, ProtocolViolation> {
        Err(ProtocolViolation(format!(
            "a dry replay runs no step, not {name:?}"
        )))
    }

    async fn send_message(
        &self,
        _message: &NewMessage,
        _record: &StepRecord,
    ) -> Result<Result<(), String>, StoreError> {
        Err(REFUSED)
    }

    async fn receive_message(
        &self,
        _topic: &str,
        _at: &StepRecord,
        _timed_out: bool,
    ) -> Result<Option<String>, StoreError> {
        Err(REFUSED)
    }

    async fn get_event(
        &self,
        _workflow_id: &str,
        _key: &str,
    ) -> Result<Option<String>, StoreError> {
        Err(REFUSED)
    }

    async fn set_event(
        &self,
        _key: &str,
        _value: &str,
        _record: &StepRecord,
    ) -> Result<(), StoreError> {
        Err(REFUSED)
    }

    async fn write_stream(
        &self,
        _key: &str,
        _value: Option<&str>,
        _record: Option<&StepRecord>,
    ) -> Result<(), StoreError> {
        Err(REFUSED)
    }

    async fn bytes_held(&self) -> Result<u64, StoreError> {
        Err(REFUSED)
    }

    async fn wait_for_change(&self, _change: Change, _timeout: Duration) -> bool {
        false
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn events(&self) -> &EventSink {
        &self.events
    }
}
