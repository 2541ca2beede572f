//! What every execution of a runtime shares: the store, the engine, the options, and the
//! bookkeeping of what runs, who waits and which queues exist.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use crate::bindings::WorkflowInfo;
use crate::limits::InstanceLimits;
use crate::metrics::Metrics;
use crate::quotas::Quota;
use crate::runtime::error::RuntimeError;
use crate::runtime::events::{EventSink, RuntimeEvent};
use crate::runtime::execution::instance::{LoadedComponent, WorkflowEngine};
use crate::runtime::ids::{new_workflow_id, validate_workflow_id};
use crate::runtime::options::{DEFAULT_INSTANCE, InstanceOptions, RuntimeOptions, StartRequest};
use crate::runtime::scheduling::slots::Slots;
use crate::runtime::waiting::completion::{self, Completions, Waited};
use crate::runtime::waiting::running::Running;
use crate::runtime::waiting::signals::Signals;
use reprise_store::{
    Inserted, NewWorkflow, Store, StoreError, WorkflowEnd, WorkflowRecord, WorkflowStatus,
};

/// How often a parked parent reads its own executor's child as a safety net: the child's end
/// or cancel wakes it (see [`Shared::wait_for_child`]).
const OWN_CHILD_POLL: Duration = Duration::from_secs(60);

/// What `workflow`'s code is told about itself, run by `executor_id` on component version
/// `app_version`: the same for a live execution and a dry replay.
pub(crate) fn workflow_info(
    workflow: &WorkflowRecord,
    executor_id: &str,
    app_version: &str,
) -> Result<WorkflowInfo, StoreError> {
    Ok(WorkflowInfo {
        id: workflow.id.clone(),
        name: workflow.name.clone(),
        recovery_attempt: workflow.executions.saturating_sub(1),
        executor_id: executor_id.to_string(),
        app_version: app_version.to_string(),
        instance: workflow.instance.clone(),
        config: instance_config(workflow)?.into_iter().collect(),
    })
}

/// The instance config values captured at the workflow's start. A row that does not parse is
/// corrupt: the workflow must not run (or replay) with settings it was not started with.
fn instance_config(workflow: &WorkflowRecord) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(&workflow.config).map_err(|e| StoreError::Corrupt {
        table: "workflow_status",
        message: format!(
            "workflow {}: config is not a JSON object of strings: {e}",
            workflow.id
        ),
    })
}

/// What every execution shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: WorkflowEngine,
    /// Places in the engine's instance pool, taken in turn.
    pub(crate) slots: Slots,
    pub(crate) options: RuntimeOptions,
    pub(crate) metrics: Metrics,
    pub(crate) events: EventSink,
    /// Background drives (started, dequeued, recovered workflows), drained at shutdown.
    pub(crate) tasks: TaskTracker,
    /// The workflows executing in this process, with the tokens that stop them.
    pub(crate) running: Arc<Running>,
    /// Who waits for which workflow to end.
    pub(crate) completions: Completions,
    /// Configured queues and the signal that wakes each one's dispatcher.
    pub(crate) queues: RwLock<BTreeMap<String, Arc<Notify>>>,
    /// Who waits for which message, event or stream value.
    pub(crate) signals: Arc<Signals>,
    /// Wakes the starter of delayed workflows when one is created here.
    pub(crate) due: Notify,
    /// This host's lease as its executions judge it before each outside effect.
    pub(crate) lease: crate::runtime::ownership::LeaseClock,
    /// Adopted workflows of declared queues, oldest first, until their dispatcher has a slot.
    pub(crate) adopted: std::sync::Mutex<BTreeMap<String, std::collections::VecDeque<String>>>,
    /// Starts per second, per instance, for the instances whose quota bounds them.
    pub(crate) start_rates: crate::quotas::StartRates,
    /// The newest version of each workflow registered here.
    pub(crate) newest: crate::runtime::replay::newest::Newest,
    /// Where a step slot given back here wakes this host's waiters for it.
    pub(crate) slot_bells: crate::runtime::step_limits::SlotBells,
    /// What messages to each version's topics must look like.
    pub(crate) topics: Arc<crate::runtime::topics::TopicChecker>,
}

impl Shared {
    pub(crate) async fn workflow(&self, id: &str) -> Result<WorkflowRecord, RuntimeError> {
        self.store
            .get_workflow(id)
            .await?
            .ok_or_else(|| RuntimeError::UnknownWorkflowId(id.to_string()))
    }

    /// The options of a workflow's instance. A workflow whose instance is not configured here
    /// runs with those of the instance named `default`, if any (so the grant and limit flags of
    /// `reprise recover` or `run --id` apply to a served instance's workflow they drive), else
    /// with default limits; its config values were captured at its start.
    pub(crate) fn instance(&self, name: &str) -> &InstanceOptions {
        static DEFAULT: LazyLock<InstanceOptions> = LazyLock::new(InstanceOptions::default);
        let instances = &self.options.instances;
        instances
            .get(name)
            .or_else(|| instances.get(DEFAULT_INSTANCE))
            .unwrap_or(&DEFAULT)
    }

    /// The limits of step `step` of `instance`, for an execution of workflow `workflow_id`
    /// under `epoch`; none when the instance does not limit the step.
    pub(crate) fn step_limited(
        &self,
        instance: &str,
        step: &str,
        workflow_id: &str,
        epoch: u64,
    ) -> Option<crate::runtime::step_limits::Limited<'_>> {
        let limit = self.instance(instance).steps.get(step)?;
        Some(crate::runtime::step_limits::Limited {
            store: &self.store,
            bells: &self.slot_bells,
            request: reprise_store::StepSlotRequest {
                instance: instance.to_owned(),
                step: step.to_owned(),
                workflow_id: workflow_id.to_owned(),
                epoch,
                concurrency: limit.concurrency,
                rate: limit.rate,
            },
        })
    }

    /// The limits `workflow` runs under: its instance's, with the memory limit a trap policy
    /// or a resume gave it, if any.
    pub(crate) fn limits(&self, workflow: &WorkflowRecord) -> InstanceLimits {
        let mut limits = self.instance(&workflow.instance).limits;
        if let Some(bytes) = workflow.memory_limit {
            limits.memory_bytes = bytes;
        }
        limits
    }

    /// The component with this digest, from memory or from the database.
    pub(crate) async fn component(
        &self,
        digest: &str,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        if let Some(loaded) = self.engine.loaded(digest) {
            return Ok(loaded);
        }
        let bytes = self
            .store
            .get_component(digest)
            .await?
            .ok_or_else(|| RuntimeError::MissingComponent(digest.to_string()))?;
        // Loading instantiates the component once to list its definitions.
        let _place = self.slots.isolated().await;
        Ok(self.engine.load(&bytes).await?)
    }

    /// Ends a workflow held under ownership `epoch`; returns its final row (the first ending,
    /// if another came first).
    pub(crate) async fn finish(
        &self,
        id: &str,
        end: &WorkflowEnd,
        epoch: u64,
    ) -> Result<WorkflowRecord, RuntimeError> {
        let record = self.store.finish_workflow(id, end, Some(epoch)).await?;
        self.finished(&record);
        Ok(record)
    }

    /// Tells this process that a cancel of workflow `id` is committed, made here or by another
    /// process: its execution here stops (counted where it ran: the process that cancelled it
    /// may be a short CLI), and whoever waits for its end (a parked parent) wakes to see it.
    pub(crate) fn cancelled(&self, id: &str) {
        if self.running.cancel(id) {
            self.metrics.workflow_finished(WorkflowStatus::Cancelled);
        }
        self.completions.complete(id);
    }

    /// Tells this process that `record`'s ending is committed: its waiters, metrics and events.
    pub(crate) fn finished(&self, record: &WorkflowRecord) {
        let id = &record.id;
        tracing::debug!(workflow_id = %id, status = %record.status, "workflow finished");
        self.metrics.workflow_finished(record.status);
        self.completions.complete(id);
        self.events.emit(|| RuntimeEvent::WorkflowFinished {
            workflow_id: id.clone(),
            status: record.status,
        });
    }

    /// Validates and records a start: the id (if chosen) follows the rule, the component
    /// defines the workflow, the input is JSON, the instance and queue exist. Nothing is
    /// written when a check fails. A start without a
    /// queue has its first execution begun in the same commit when `begin` is true.
    pub(crate) async fn submit(
        &self,
        component: &LoadedComponent,
        request: StartRequest,
        begin: bool,
    ) -> Result<Inserted, RuntimeError> {
        let (new, wake) = self.admit(component, request, begin)?;
        let inserted = self.store.insert_workflow(&new).await?;
        let existing = &inserted.record;
        if !inserted.created && (existing.name != new.name || existing.instance != new.instance) {
            return Err(RuntimeError::IdTaken {
                id: new.id,
                name: existing.name.clone(),
                instance: existing.instance.clone(),
            });
        }
        if inserted.created {
            self.metrics.workflow_started();
            if let Some(wake) = wake {
                wake.notify_one();
            }
            if new.not_before.is_some() {
                self.due.notify_one();
            }
        }
        Ok(inserted)
    }

    /// The checks of [`Shared::submit`], and the row they admit with the signal of its queue:
    /// nothing is written.
    pub(crate) fn admit(
        &self,
        component: &LoadedComponent,
        request: StartRequest,
        begin: bool,
    ) -> Result<(NewWorkflow, Option<Arc<Notify>>), RuntimeError> {
        if let Some(id) = &request.id {
            validate_workflow_id(id)?;
        }
        if !component.has_workflow(&request.workflow) {
            return Err(RuntimeError::UnknownWorkflow {
                name: request.workflow,
                available: component.definitions.workflows.clone(),
            });
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&request.input)
            .map_err(|e| RuntimeError::InvalidInput(e.to_string()))?;
        let instance_name = if request.instance.is_empty() {
            DEFAULT_INSTANCE.to_string()
        } else {
            request.instance
        };
        let instance = self
            .options
            .instances
            .get(&instance_name)
            .ok_or_else(|| RuntimeError::UnknownInstance(instance_name.clone()))?;
        if let Some(per_second) = instance.quotas.starts_per_second
            && !self
                .start_rates
                .admit(&instance_name, per_second, std::time::Instant::now())
        {
            self.metrics.quota_refused(Quota::Starts);
            return Err(RuntimeError::QuotaExceeded(format!(
                "quota reached: instance {instance_name:?} starts at most {per_second} workflows/s \
                 on this host (quotas.starts_per_second); try again shortly"
            )));
        }
        let wake = match &request.queue {
            Some(queue) => Some(self.queue_signal(queue)?),
            None => None,
        };
        let new = NewWorkflow {
            id: request.id.unwrap_or_else(new_workflow_id),
            name: request.workflow,
            input: request.input,
            executor_id: self.options.executor_id.clone(),
            app_version: component.digest.clone(),
            instance: instance_name,
            config: serde_json::to_string(&instance.config)
                .map_err(|e| RuntimeError::InvalidInput(format!("instance config: {e}")))?,
            max_recovery_attempts: instance.max_recovery_attempts,
            begin_execution: begin && request.queue.is_none(),
            queue_name: request.queue,
            priority: request.priority,
            deduplication_id: request.deduplication_id,
            partition_key: request.partition_key,
            parent_workflow_id: request.parent,
            timeout_ms: request
                .timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            deadline_at: request.deadline_at,
            not_before: request.not_before,
            scheduled_at: request.scheduled_at,
        };
        Ok((new, wake))
    }

    /// The wake-up signal of a configured queue.
    pub(crate) fn queue_signal(&self, queue: &str) -> Result<Arc<Notify>, RuntimeError> {
        let queues = self
            .queues
            .read()
            .map_err(|_| RuntimeError::Task("queue registry poisoned".into()))?;
        queues
            .get(queue)
            .cloned()
            .ok_or_else(|| RuntimeError::UnknownQueue {
                name: queue.to_string(),
                available: queues.keys().cloned().collect(),
            })
    }

    /// Waits until a workflow is terminal (in this process or any other) or `timeout` passes
    /// (`Ok(None)`).
    pub(crate) async fn wait(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<WorkflowRecord>, RuntimeError> {
        match self
            .wait_ended(id, timeout, completion::POLL_INTERVAL)
            .await?
        {
            Waited::Ended(record) => Ok(Some(*record)),
            Waited::TimedOut => Ok(None),
            Waited::Unknown => Err(RuntimeError::UnknownWorkflowId(id.to_string())),
        }
    }

    /// [`Shared::wait`] with only the store's errors left as errors. Ends in other processes
    /// are noticed by polling, every [`completion::POLL_INTERVAL`] at first and ever less
    /// often, up to every `max_poll`.
    pub(crate) async fn wait_ended(
        &self,
        id: &str,
        timeout: Option<Duration>,
        max_poll: Duration,
    ) -> Result<Waited, StoreError> {
        self.wait_polling(
            id,
            timeout,
            completion::POLL_INTERVAL.min(max_poll),
            max_poll,
        )
        .await
    }

    /// Waits for a parked parent's child to end. A child of this executor ends here, or is
    /// cancelled, and either wakes its waiters, so it is read again only every
    /// [`OWN_CHILD_POLL`] as a safety net: a host with many parents parked reads nothing
    /// per parent while it idles. Another executor's child is polled as any wait.
    pub(crate) async fn wait_for_child(
        &self,
        id: &str,
        max_poll: Duration,
    ) -> Result<Waited, StoreError> {
        let own = matches!(self.store.get_workflow(id).await?,
            Some(record) if record.executor_id == self.options.executor_id);
        if own {
            self.wait_polling(id, None, OWN_CHILD_POLL, OWN_CHILD_POLL)
                .await
        } else {
            self.wait_ended(id, None, max_poll).await
        }
    }

    /// [`wait_ended`](Self::wait_ended), reading the workflow again after `first`, then at
    /// doubling intervals up to `max_poll`.
    async fn wait_polling(
        &self,
        id: &str,
        timeout: Option<Duration>,
        first: Duration,
        max_poll: Duration,
    ) -> Result<Waited, StoreError> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut every = first;
        loop {
            // Register before reading, so a completion between the read and the wait is seen.
            let done = self.completions.register(id);
            match self.store.get_workflow(id).await? {
                None => return Ok(Waited::Unknown),
                Some(record) if record.status.is_terminal() => {
                    return Ok(Waited::Ended(Box::new(record)));
                }
                Some(_) => {}
            }
            let poll = tokio::time::sleep(every);
            every = (every * 2).min(max_poll);
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = done => {}
                _ = poll => {}
                _ = expired => return Ok(Waited::TimedOut),
            }
        }
    }
}
