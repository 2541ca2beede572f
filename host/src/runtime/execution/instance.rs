//! The data of one wasmtime store — one guest instance — and what it is for.

use std::collections::HashSet;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::sockets::WasiSocketsCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::WorkflowInfo;
use crate::engine::{GuestState, TopicDefinition};
use crate::grants::Grants;
use crate::limits::MemoryLimiter;
use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::interrupt::violation;
use crate::sandbox::dns::GatedNameLookupView;
use crate::sandbox::files::GatedFilesystemView;
use crate::sandbox::http::HttpGate;
use crate::sandbox::poll::GatedPollView;
use crate::sandbox::streams::{GatedStreamsView, StdioView};
use crate::sandbox::{Access, SandboxError, StepPhase};
use wasmtime_wasi::cli::WasiCliCtxView;

/// The engine a runtime runs its instances on.
pub type WorkflowEngine = crate::engine::Engine<InstanceState>;
/// A component loaded into a runtime's engine, ready to run workflows.
pub type LoadedComponent = crate::engine::LoadedComponent<InstanceState>;

/// The state of one instance: its sandboxed WASI and HTTP, memory limiter and role. Opaque
/// outside the runtime; the engine reaches it through [`GuestState`].
pub struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    /// What the instance's steps may reach; secrets are read through it.
    pub(crate) access: Access,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(crate) role: Role,
    /// The message the guest's panic hook reported, used to classify the following trap.
    pub(crate) panic_message: Option<String>,
    /// Set by a durable call of workflow code or a step's start or end: the guest gets a
    /// fresh CPU budget when the call returns.
    pub(crate) refuel: bool,
    /// The guest's stdin, stdout and stderr streams (their resource reps): open to workflow
    /// code, unlike the streams steps open.
    stdio: HashSet<u32>,
    /// Pollables on what only steps open (streams, response futures; resource reps): not
    /// workflow code's to wait on.
    step_pollables: HashSet<u32>,
}

/// What an instance is for; decides which durable calls it may make.
pub(crate) enum Role {
    /// Runs a workflow: durable calls are checkpointed.
    Workflow(Box<WorkflowContext>),
    /// Runs one attempt of an isolated step for the workflow described by `info`.
    IsolatedStep {
        info: WorkflowInfo,
        /// The step it runs, named in its logs.
        step: String,
        /// The step's idempotency key (its workflow, run and position).
        key: String,
    },
    /// Lists definitions, and gathers the topic types the component declares meanwhile; makes
    /// no durable calls.
    Listing(Vec<TopicDefinition>),
}

impl InstanceState {
    /// An instance whose clocks and random are seeded by `seed` and start at `epoch_ms`, whose
    /// steps reach what `grants` of `instance` allow.
    pub(crate) fn new(
        seed: &str,
        epoch_ms: i64,
        memory_limit: u64,
        role: Role,
        grants: Arc<Grants>,
        instance: &str,
    ) -> Result<Self, SandboxError> {
        let (phase, workflow_id) = match &role {
            Role::Workflow(ctx) => (ctx.phase.clone(), ctx.info.id.as_str()),
            Role::IsolatedStep { info, .. } => (StepPhase::new(true), info.id.as_str()),
            Role::Listing(_) => (StepPhase::new(false), ""),
        };
        let access = Access::new(grants, instance, workflow_id, phase);
        Ok(InstanceState {
            wasi: crate::sandbox::wasi(seed, epoch_ms, &access)?,
            http: WasiHttpCtx::new(),
            http_gate: HttpGate::new(access.clone()),
            access,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            role,
            panic_message: None,
            refuel: false,
            stdio: HashSet::new(),
            step_pollables: HashSet::new(),
        })
    }

    /// The id of the workflow this instance works for, for logs and events.
    pub(crate) fn workflow_id(&self) -> String {
        match &self.role {
            Role::Workflow(ctx) => ctx.info.id.clone(),
            Role::IsolatedStep { info, .. } => info.id.clone(),
            Role::Listing(_) => String::new(),
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_gate,
        }
    }
}

impl GuestState for InstanceState {
    fn gated_name_lookup(&mut self) -> GatedNameLookupView<'_> {
        GatedNameLookupView {
            inner: WasiSocketsCtxView {
                ctx: self.wasi.sockets(),
                table: &mut self.table,
            },
            access: &self.access,
        }
    }

    fn gated_filesystem(&mut self) -> GatedFilesystemView<'_> {
        GatedFilesystemView {
            inner: WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
            access: &self.access,
        }
    }

    fn gated_streams(&mut self) -> GatedStreamsView<'_> {
        GatedStreamsView {
            table: &mut self.table,
            access: &self.access,
            stdio: &mut self.stdio,
            step_pollables: &mut self.step_pollables,
        }
    }

    fn gated_poll(&mut self) -> GatedPollView<'_> {
        GatedPollView {
            table: &mut self.table,
            access: &self.access,
            step_pollables: &mut self.step_pollables,
            refuse: violation,
        }
    }

    fn note_step_pollable(&mut self, pollable: u32) {
        self.step_pollables.insert(pollable);
    }

    fn stdio(&mut self) -> StdioView<'_> {
        StdioView {
            inner: WasiCliCtxView {
                ctx: self.wasi.cli(),
                table: &mut self.table,
            },
            stdio: &mut self.stdio,
        }
    }

    fn may_do_io(&self, what: &str) -> Result<(), String> {
        self.access.in_step(|| what.to_string())
    }

    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    fn take_refuel(&mut self) -> bool {
        std::mem::take(&mut self.refuel)
    }

    fn take_topics(&mut self) -> Vec<TopicDefinition> {
        match &mut self.role {
            Role::Listing(topics) => std::mem::take(topics),
            _ => Vec::new(),
        }
    }

    fn for_listing(memory_bytes: u64) -> Self {
        let access = Access::nothing();
        InstanceState {
            wasi: wasmtime_wasi::WasiCtxBuilder::new().build(),
            http: WasiHttpCtx::new(),
            http_gate: HttpGate::new(access.clone()),
            access,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            role: Role::Listing(Vec::new()),
            panic_message: None,
            refuel: false,
            stdio: HashSet::new(),
            step_pollables: HashSet::new(),
        }
    }
}
