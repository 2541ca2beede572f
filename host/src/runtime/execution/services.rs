//! What a workflow instance needs from the runtime around it — durable commits, children,
//! isolated instances, metrics and events — as one narrow trait, so the step protocol in
//! `durable.rs` never sees the runtime and can be tested with a fake.

use std::time::Duration;

use async_trait::async_trait;

use crate::bindings::AttemptInfo;
use crate::metrics::Metrics;
use crate::runtime::events::EventSink;
use crate::runtime::execution::interrupt::ProtocolViolation;
use crate::runtime::options::StartRequest;
use crate::runtime::step_limits::Taken;
use crate::runtime::waiting::completion::Waited;
use reprise_store::{Change, NewMessage, StepRecord, StoreError};

/// The runtime as one workflow execution sees it.
#[async_trait]
pub(crate) trait Services: Send + Sync {
    /// Returns once this execution may act outside the guest (begin a step attempt, send,
    /// start a child): at once while the host's lease is fresh; otherwise after the lease is
    /// renewed and the workflow's epoch read again. Another epoch is
    /// [`StoreError::Fenced`]: another host took the workflow over, and this execution stops.
    async fn may_act(&self, epoch: u64) -> Result<(), StoreError>;
    /// A slot for one execution of step `step` under its instance's limits, taken under
    /// `epoch`: [`Taken::Unlimited`] for a step without limits, [`Taken::Busy`] when none is
    /// free now.
    async fn take_step_slot(&self, step: &str, epoch: u64) -> Result<Taken, StoreError>;
    /// Waits at most `within` for a slot of `step` given back on this host.
    async fn step_slot_rung(&self, step: &str, within: Duration);
    /// Commits a step outcome (or a recorded value); returns once it is durable.
    async fn checkpoint(&self, step: &StepRecord) -> Result<(), StoreError>;
    /// Creates a child workflow of this component (or finds the one with the requested id)
    /// and makes sure it runs. `Ok(Err(message))` is a request the guest got wrong.
    async fn start_child(
        &self,
        request: StartRequest,
    ) -> Result<Result<String, String>, StoreError>;
    /// `Some(why)` when this workflow's code may not touch workflow `id` (see
    /// `runtime::reach`); the words are the same as for an id that does not exist.
    async fn out_of_reach(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Waits until a workflow ends, or `timeout` passes (`Waited::TimedOut`).
    async fn wait_for(&self, id: &str, timeout: Duration) -> Result<Waited, StoreError>;
    /// Runs one attempt of an isolated step in a fresh instance of this component: its output
    /// or its error, or a [`ProtocolViolation`] when no attempt could ever succeed (the step
    /// is missing from the component's exports). An attempt running past `timeout` is
    /// interrupted and fails with a timeout error.
    async fn run_isolated(
        &self,
        function_id: u32,
        name: &str,
        input: Vec<u8>,
        attempt: AttemptInfo,
        timeout: Option<Duration>,
    ) -> Result<Result<Vec<u8>, String>, ProtocolViolation>;
    /// Sends a message and records the sender's position in one commit, then wakes the
    /// destination if it waits here. `Ok(Err(why))`, with nothing written, when the message
    /// does not match the type the destination's code declares for the topic.
    async fn send_message(
        &self,
        message: &NewMessage,
        record: &StepRecord,
    ) -> Result<Result<(), String>, StoreError>;
    /// Consumes the oldest message on this workflow's `topic` and records it at `at`; with
    /// none, records the timeout when `timed_out`.
    async fn receive_message(
        &self,
        topic: &str,
        at: &StepRecord,
        timed_out: bool,
    ) -> Result<Option<String>, StoreError>;
    /// The latest value (JSON text) of a workflow's event; none for a workflow out of reach.
    async fn get_event(&self, workflow_id: &str, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets this workflow's event and records `record` in one commit, then wakes its waiters.
    async fn set_event(
        &self,
        key: &str,
        value: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError>;
    /// Appends to (or with `None` closes) this workflow's stream, with `record` in the same
    /// commit when workflow code wrote it, then wakes its readers.
    async fn write_stream(
        &self,
        key: &str,
        value: Option<&str>,
        record: Option<&StepRecord>,
    ) -> Result<(), StoreError>;
    /// Bytes this workflow holds in the messages it sent, its events and its streams.
    async fn bytes_held(&self) -> Result<u64, StoreError>;
    /// Waits up to `timeout` for `change`, made in this process or seen in another's;
    /// whether it came.
    async fn wait_for_change(&self, change: Change, timeout: Duration) -> bool;
    /// Counters for `/metrics`.
    fn metrics(&self) -> &Metrics;
    /// Observers of what the execution does.
    fn events(&self) -> &EventSink;
}
