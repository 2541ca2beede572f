//! The data of one wasmtime store — one guest instance — and what it is for.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::WorkflowInfo;
use crate::engine::GuestState;
use crate::limits::MemoryLimiter;
use crate::runtime::context::WorkflowContext;
use crate::sandbox::{StepPhase, virtual_wasi};

/// The engine a runtime runs its instances on.
pub type WorkflowEngine = crate::engine::Engine<HostState>;
/// A component loaded into a runtime's engine, ready to run workflows.
pub type LoadedComponent = crate::engine::LoadedComponent<HostState>;

/// The state of one instance: its sandboxed WASI, memory limiter and role. Opaque outside the
/// runtime; the engine reaches it through [`GuestState`].
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    pub(crate) role: Role,
    /// The message the guest's panic hook reported, used to classify the following trap.
    pub(crate) panic_message: Option<String>,
    /// Set by a durable call of workflow code or a step's start or end: the guest gets a
    /// fresh CPU budget when the call returns.
    pub(crate) refuel: bool,
}

/// What an instance is for; decides which durable calls it may make.
pub(crate) enum Role {
    /// Runs a workflow: durable calls are checkpointed.
    Workflow(Box<WorkflowContext>),
    /// Runs one attempt of an isolated step for the workflow described by `info`.
    IsolatedStep { info: WorkflowInfo },
    /// Lists definitions; makes no durable calls.
    Listing,
}

impl HostState {
    /// An instance whose clocks and random are seeded by `seed` and start at `epoch_ms`.
    pub(crate) fn new(seed: &str, epoch_ms: i64, memory_limit: u64, role: Role) -> Self {
        let phase = match &role {
            Role::Workflow(ctx) => ctx.phase.clone(),
            Role::IsolatedStep { .. } => StepPhase::new(true),
            Role::Listing => StepPhase::new(false),
        };
        HostState {
            wasi: virtual_wasi(seed, epoch_ms, &phase),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            role,
            panic_message: None,
            refuel: false,
        }
    }

    /// The id of the workflow this instance works for, for logs and events.
    pub(crate) fn workflow_id(&self) -> String {
        match &self.role {
            Role::Workflow(ctx) => ctx.info.id.clone(),
            Role::IsolatedStep { info } => info.id.clone(),
            Role::Listing => String::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl GuestState for HostState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }

    fn take_refuel(&mut self) -> bool {
        std::mem::take(&mut self.refuel)
    }

    fn for_listing(memory_bytes: u64) -> Self {
        HostState::new("inspect", 0, memory_bytes, Role::Listing)
    }
}
