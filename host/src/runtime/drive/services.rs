//! The runtime as one execution sees it: the real [`Services`] behind its durable calls,
//! writing to the store and waking this process's waiters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::bindings::{AttemptInfo, WorkflowInfo};
use crate::grants::Grants;
use crate::limits::InstanceLimits;
use crate::metrics::Metrics;
use crate::runtime::drive::start::{Existing, start};
use crate::runtime::drive::unwritten::Unwritten;
use crate::runtime::error::RuntimeError;
use crate::runtime::events::EventSink;
use crate::runtime::execution::instance::LoadedComponent;
use crate::runtime::execution::interrupt::ProtocolViolation;
use crate::runtime::execution::isolated;
use crate::runtime::execution::services::Services;
use crate::runtime::options::StartRequest;
use crate::runtime::reach::Caller;
use crate::runtime::shared::Shared;
use crate::runtime::step_limits::{Limited, Taken};
use crate::runtime::waiting::completion::{POLL_INTERVAL, Waited};
use crate::telemetry::ExecutionSpan;
use reprise_store::{Change, NewMessage, StepRecord, StoreError};

/// The real [`Services`] of one execution: the runtime's shared state and the component,
/// workflow and limits it runs.
pub(crate) struct RuntimeServices {
    pub(crate) shared: Arc<Shared>,
    pub(crate) component: Arc<LoadedComponent>,
    /// The execution's span, for the trap of an isolated step attempt.
    pub(crate) trace: ExecutionSpan,
    pub(crate) info: WorkflowInfo,
    pub(crate) created_at: i64,
    /// The workflow's deadline, which its children inherit.
    pub(crate) deadline_at: Option<i64>,
    pub(crate) limits: InstanceLimits,
    pub(crate) grants: Arc<Grants>,
    /// The workflow's run, part of its steps' idempotency keys.
    pub(crate) run: u32,
    /// The lease's lapses this execution has checked its epoch after.
    pub(crate) lapses_seen: AtomicU64,
    /// A new workflow whose row is written before its first durable call (see
    /// [`crate::runtime::drive::unwritten`]).
    pub(crate) unwritten: Option<Arc<Unwritten>>,
}

impl RuntimeServices {
    /// Returns once the workflow's row is written: every call that reaches out of the guest,
    /// or reads or writes the workflow, waits for it.
    async fn written(&self) -> Result<(), StoreError> {
        match &self.unwritten {
            Some(unwritten) => unwritten.write(&self.shared).await,
            None => Ok(()),
        }
    }

    /// Step `step`'s limits for an execution under `epoch`; none when it has none.
    fn limited(&self, step: &str, epoch: u64) -> Option<Limited<'_>> {
        let info = &self.info;
        self.shared
            .step_limited(&info.instance, step, &info.id, epoch)
    }
}

#[async_trait]
impl Services for RuntimeServices {
    async fn take_step_slot(&self, step: &str, epoch: u64) -> Result<Taken, StoreError> {
        self.written().await?;
        match self.limited(step, epoch) {
            Some(limited) => limited.take().await,
            None => Ok(Taken::Unlimited),
        }
    }

    async fn step_slot_rung(&self, step: &str, within: Duration) {
        if let Some(limited) = self.limited(step, 0) {
            limited.rung_within(within).await;
        }
    }

    async fn may_act(&self, epoch: u64) -> Result<(), StoreError> {
        self.written().await?;
        let lease = &self.shared.lease;
        let id = &self.info.id;
        if !lease.fresh() {
            tracing::warn!(workflow_id = %id, epoch, "this host's lease is older than it may trust (the process was paused, or the database was unreachable): halting until it is renewed");
            lease.until_fresh().await;
        }
        let lapses = lease.lapses();
        if lapses == self.lapses_seen.load(Ordering::Acquire) {
            return Ok(());
        }
        let current = self
            .shared
            .store
            .get_workflow(id)
            .await?
            .ok_or_else(|| StoreError::UnknownWorkflow(id.clone()))?;
        if current.epoch != epoch {
            return Err(StoreError::Fenced {
                workflow_id: id.clone(),
                epoch,
                current: current.epoch,
            });
        }
        tracing::info!(workflow_id = %id, epoch, "lease renewed and the workflow still ours: going on");
        self.lapses_seen.store(lapses, Ordering::Release);
        Ok(())
    }

    async fn checkpoint(&self, step: &StepRecord) -> Result<(), StoreError> {
        self.written().await?;
        let started = Instant::now();
        self.shared.store.record_step(step).await?;
        self.shared.metrics.checkpoint(started.elapsed());
        Ok(())
    }

    async fn start_child(
        &self,
        mut request: StartRequest,
    ) -> Result<Result<String, String>, StoreError> {
        self.written().await?;
        // A child has the earlier of its own deadline and its parent's.
        request.deadline_at = match (request.deadline_at, self.deadline_at) {
            (Some(own), Some(parent)) => Some(own.min(parent)),
            (own, parent) => own.or(parent),
        };
        let parent = self.info.id.clone();
        match start(&self.shared, &self.component, request, Existing::Join).await {
            // An id that names a workflow this one did not start is not this workflow's to
            // join, whatever it is: the guest hears no, and that workflow is left as it is.
            Ok(inserted)
                if !inserted.created
                    && inserted.record.parent_workflow_id.as_deref() != Some(&parent) =>
            {
                Ok(Err(not_a_child(&inserted.record.id, &parent)))
            }
            // Says nothing of what the other workflow is.
            Err(RuntimeError::IdTaken { id, .. }) => Ok(Err(not_a_child(&id, &parent))),
            Ok(inserted) => Ok(Ok(inserted.record.id)),
            Err(RuntimeError::Store(err @ StoreError::Duplicate { .. })) => {
                Ok(Err(err.to_string()))
            }
            Err(RuntimeError::Store(err)) => Err(err),
            Err(err) => Ok(Err(err.to_string())),
        }
    }

    async fn out_of_reach(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.written().await?;
        let caller = self.caller();
        Ok(match self.shared.store.get_workflow(id).await? {
            Some(target) if caller.reaches(&target) => None,
            _ => Some(caller.no_such_workflow(id)),
        })
    }

    async fn wait_for(&self, id: &str, timeout: Duration) -> Result<Waited, StoreError> {
        self.written().await?;
        self.shared
            .wait_ended(id, Some(timeout), POLL_INTERVAL)
            .await
    }

    async fn run_isolated(
        &self,
        function_id: u32,
        name: &str,
        input: Vec<u8>,
        attempt: AttemptInfo,
        timeout: Option<Duration>,
    ) -> Result<Result<Vec<u8>, String>, ProtocolViolation> {
        let seed = format!("{}#{function_id}", self.info.id);
        let _place = self.shared.slots.isolated().await;
        let instance = isolated::Instance {
            shared: &self.shared,
            component: &self.component,
            info: &self.info,
            seed: &seed,
            function_id,
            run: self.run,
            created_at: self.created_at,
            limits: self.limits,
            grants: &self.grants,
            trace: &self.trace,
        };
        instance.run_attempt(name, input, attempt, timeout).await
    }

    async fn send_message(
        &self,
        message: &NewMessage,
        record: &StepRecord,
    ) -> Result<Result<(), String>, StoreError> {
        self.written().await?;
        let (to, topic) = (&message.destination_id, &message.topic);
        if let Err(refused) = self
            .shared
            .topics
            .check(to, topic, &message.message)
            .await?
        {
            return Ok(Err(refused));
        }
        self.shared
            .store
            .send_message(message, Some(record))
            .await?;
        self.shared.signals.wake(&Change::Message {
            workflow_id: message.destination_id.clone(),
            topic: message.topic.clone(),
        });
        Ok(Ok(()))
    }

    async fn receive_message(
        &self,
        topic: &str,
        at: &StepRecord,
        timed_out: bool,
    ) -> Result<Option<String>, StoreError> {
        self.written().await?;
        let store = &self.shared.store;
        store
            .receive_message(&self.info.id, topic, at, timed_out)
            .await
    }

    async fn get_event(&self, workflow_id: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.written().await?;
        let store = &self.shared.store;
        let Some(event) = store.get_event(workflow_id, key).await? else {
            return Ok(None);
        };
        // Read as absent unless the workflow is within reach, also when it appeared after
        // the wait began.
        let reachable = store
            .get_workflow(workflow_id)
            .await?
            .is_some_and(|target| self.caller().reaches(&target));
        Ok(reachable.then_some(event.value))
    }

    async fn set_event(
        &self,
        key: &str,
        value: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError> {
        self.written().await?;
        let id = &self.info.id;
        self.shared
            .store
            .set_event(id, key, value, Some(record))
            .await?;
        self.shared.signals.wake(&Change::Event {
            workflow_id: id.clone(),
            key: key.to_string(),
        });
        Ok(())
    }

    async fn write_stream(
        &self,
        key: &str,
        value: Option<&str>,
        record: Option<&StepRecord>,
    ) -> Result<(), StoreError> {
        self.written().await?;
        let id = &self.info.id;
        self.shared
            .store
            .write_stream(id, key, value, record)
            .await?;
        self.shared.signals.wake(&Change::Stream {
            workflow_id: id.clone(),
            key: key.to_string(),
        });
        Ok(())
    }

    async fn bytes_held(&self) -> Result<u64, StoreError> {
        self.written().await?;
        self.shared.store.bytes_held(&self.info.id).await
    }

    async fn wait_for_change(&self, change: Change, timeout: Duration) -> bool {
        let changed = self.shared.signals.register(&change, &self.shared.store);
        matches!(tokio::time::timeout(timeout, changed).await, Ok(Ok(())))
    }

    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn events(&self) -> &EventSink {
        &self.shared.events
    }
}

impl RuntimeServices {
    /// This workflow as `runtime::reach` judges it.
    fn caller(&self) -> Caller<'_> {
        Caller {
            id: &self.info.id,
            instance: &self.info.instance,
            reach: &self.shared.instance(&self.info.instance).reach,
        }
    }
}

/// The guest's answer when a child id names a workflow that is not its own child.
fn not_a_child(id: &str, parent: &str) -> String {
    format!(
        "workflow id {id} is taken by a workflow that is not a child of {parent}: a child's id \
         must be new, or name this workflow's own child"
    )
}
