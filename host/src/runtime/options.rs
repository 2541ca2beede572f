//! How a runtime runs workflows: its executor, its configured instances and their limits, and
//! what a start asks for.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::grants::Grants;
use crate::limits::InstanceLimits;
use crate::quotas::Quotas;
use crate::runtime::drive::recovery::TrapPolicies;
use crate::runtime::step_limits::StepLimit;
use crate::telemetry::Telemetry;

/// How the workflows of one configured instance run: its limits, recovery bound and the config
/// values its guest reads. DBOS's configured instances: one component, several settings.
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    /// Memory, fuel and output caps of each instance.
    pub limits: InstanceLimits,
    /// Recoveries allowed after traps of the workflow's own instance (DBOS's default: 100).
    pub max_recovery_attempts: u32,
    /// Recoveries allowed after the host crashed or restarted under the workflow: generous,
    /// so a crash-looping host does not fail good work, yet bounded, so a workflow that keeps
    /// killing its host ends.
    pub max_host_recoveries: u32,
    /// Config values the guest reads through `workflow-info`; captured when a workflow starts,
    /// so a recovery sees what the start saw.
    pub config: BTreeMap<String, String>,
    /// What happens after traps of each class: more or fewer recoveries, a growing memory
    /// limit, pausing instead of failing. Classes without one keep the defaults.
    pub trap_policies: TrapPolicies,
    /// What its steps may reach: hosts, directories, secrets. Read when an execution starts,
    /// never stored: a recovery sees the grants configured now.
    pub grants: Arc<Grants>,
    /// Instances whose workflows this one's code may also send to, read events of and await
    /// (`"*"`: all). Its own instance and its own children it always reaches.
    pub reach: Vec<String>,
    /// What its workflows may take of what all instances share.
    pub quotas: Quotas,
    /// Whether its workflows stay on the version they started on, or move to the newest one
    /// registered here when they wake or recover and their history replays cleanly on it.
    pub upgrade: UpgradePolicy,
    /// Limits on its steps, by step name, over every host on the database.
    pub steps: BTreeMap<String, StepLimit>,
}

/// When a workflow moves to a newer version of its component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpgradePolicy {
    /// Only when an operator moves it (`workflow upgrade`, the API, the UI).
    #[default]
    Pinned,
    /// Also by itself, each time it wakes or recovers, when its history replays cleanly on
    /// the newest version.
    Auto,
}

impl InstanceOptions {
    /// The default bound on recoveries after host crashes or restarts.
    pub const DEFAULT_MAX_HOST_RECOVERIES: u32 = 1000;
}

impl Default for InstanceOptions {
    fn default() -> Self {
        InstanceOptions {
            limits: InstanceLimits::default(),
            max_recovery_attempts: 100,
            max_host_recoveries: InstanceOptions::DEFAULT_MAX_HOST_RECOVERIES,
            config: BTreeMap::new(),
            trap_policies: TrapPolicies::new(),
            grants: Arc::default(),
            reach: Vec::new(),
            quotas: Quotas::default(),
            upgrade: UpgradePolicy::Pinned,
            steps: BTreeMap::new(),
        }
    }
}

/// How this runtime runs workflows.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Who owns the workflows this runtime starts; recovery resumes only its own.
    pub executor_id: String,
    /// Named instances. `reprise run` has one, named [`DEFAULT_INSTANCE`].
    pub instances: BTreeMap<String, InstanceOptions>,
    /// Where this runtime's traces go; off by default.
    pub telemetry: Telemetry,
}

/// The instance `reprise run` and the convenience calls use.
pub const DEFAULT_INSTANCE: &str = "default";

impl RuntimeOptions {
    /// One instance named `default`.
    pub fn single(executor_id: impl Into<String>, instance: InstanceOptions) -> Self {
        RuntimeOptions {
            executor_id: executor_id.into(),
            instances: BTreeMap::from([(DEFAULT_INSTANCE.to_string(), instance)]),
            telemetry: Telemetry::off(),
        }
    }

    /// The largest memory limit any instance may reach, grown by a trap policy too, which
    /// sizes the engine's instance pool.
    pub fn max_memory_bytes(&self) -> u64 {
        self.instances
            .values()
            .flat_map(|i| {
                let grown = i.trap_policies.values().filter_map(|p| p.grow_memory);
                std::iter::once(i.limits.memory_bytes).chain(grown.map(|g| g.max_bytes))
            })
            .max()
            .unwrap_or(InstanceLimits::DEFAULT_MEMORY_BYTES)
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions::single("local", InstanceOptions::default())
    }
}

/// Everything a start needs beyond the component: which instance, queue and id.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    /// The workflow's name in its component.
    pub workflow: String,
    /// JSON text.
    pub input: String,
    /// Instance name; [`DEFAULT_INSTANCE`] when empty.
    pub instance: String,
    /// Caller-chosen id (idempotency key); generated when `None`.
    pub id: Option<String>,
    /// Enqueue on this queue instead of starting at once.
    pub queue: Option<String>,
    /// Lower runs sooner within a queue.
    pub priority: i32,
    /// Refuse a second enqueue with this id while the first is active on the queue.
    pub deduplication_id: Option<String>,
    /// Its partition of a partitioned queue.
    pub partition_key: Option<String>,
    /// The workflow that started this one, for child workflows.
    pub parent: Option<String>,
    /// A time limit counted from its first execution's start: past it, it is cancelled.
    pub timeout: Option<std::time::Duration>,
    /// A deadline it has anyway (its parent's), in ms since the epoch.
    pub deadline_at: Option<i64>,
    /// Not started before this moment (ms since the epoch): it stays ENQUEUED until then.
    pub not_before: Option<i64>,
    /// For a schedule's firing: the time it was due (ms since the epoch).
    pub scheduled_at: Option<i64>,
}

impl StartRequest {
    /// A start of `workflow` on the default instance.
    pub fn new(workflow: impl Into<String>, input: impl Into<String>) -> Self {
        StartRequest {
            workflow: workflow.into(),
            input: input.into(),
            ..StartRequest::default()
        }
    }
}
