//! The wasmtime engine, the compiled-component cache, and pre-instantiated components.
//!
//! Compiling a component costs ~50 ms; loading a serialized artifact ~0.2 ms; instantiating a
//! pre-linked component ~12 µs. So a component is compiled once per content digest (and engine
//! configuration) and the artifact kept on disk, and every execution instantiates from a
//! cached [`GuestPre`].
//!
//! The engine knows nothing of the runtime: like wasmtime-wasi, it names the state of an
//! instance only through a trait ([`GuestState`]) that the runtime implements.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{CallHook, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;

use crate::bindings::reprise::workflow::{durable, types};
use crate::bindings::{Guest, GuestPre};
use crate::limits::{InstanceLimits, MemoryLimiter};
use crate::sandbox::dns::{GatedNameLookup, GatedNameLookupView};
use crate::sandbox::files::{GatedFilesystem, GatedFilesystemView};
use crate::sandbox::poll::{GatedPoll, GatedPollView};
use crate::sandbox::streams::{GatedStreams, GatedStreamsView, Stdio, StdioView};
use wasmtime_wasi::p2::bindings::cli::{stderr, stdin, stdout};

/// The deepest a guest's wasm stack may grow: past it, a stack-overflow trap.
pub const MAX_WASM_STACK_BYTES: usize = 1 << 20;
/// Fuel between the guest's yields to tokio, so one busy guest cannot starve the others.
pub const FUEL_YIELD_INTERVAL: u64 = 10_000_000;
/// The wasmtime version instances run on (the workspace pins it).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// The size of a wasm page: memories' sizes are counted in them.
const WASM_PAGE_BYTES: u64 = 64 << 10;
/// What the engine needs of an instance's state: WASI, the `reprise:workflow` imports, and a
/// memory limiter. The runtime's store data implements it.
pub trait GuestState:
    WasiView + WasiHttpView + durable::Host + types::Host + Send + Sized + 'static
{
    /// The instance's filesystem behind the gate that keeps it to steps.
    fn gated_filesystem(&mut self) -> GatedFilesystemView<'_>;
    /// The instance's name lookups behind the same gate.
    fn gated_name_lookup(&mut self) -> GatedNameLookupView<'_>;
    /// The instance's streams behind the same gate.
    fn gated_streams(&mut self) -> GatedStreamsView<'_>;
    /// The instance's stdio, noting the streams it hands out.
    fn stdio(&mut self) -> StdioView<'_>;
    /// The instance's pollables behind the gate.
    fn gated_poll(&mut self) -> GatedPollView<'_>;
    /// Notes a pollable on what only a step opens: not workflow code's to wait on.
    fn note_step_pollable(&mut self, pollable: u32);
    /// `Err` with the refusal when I/O may not happen now (workflow code, not a step).
    fn may_do_io(&self, what: &str) -> Result<(), String>;
    /// The limiter that turns growing past the instance's limit into a typed trap.
    fn limiter(&mut self) -> &mut MemoryLimiter;
    /// Whether the guest made a durable call since this was last asked: it then gets a fresh
    /// CPU budget, so the budget bounds each step attempt and each stretch of workflow code
    /// between durable calls, not a whole (possibly long) execution.
    fn take_refuel(&mut self) -> bool;
    /// The state of an instance that only lists the component's definitions, allowed
    /// `memory_bytes` (a component's initial memory must fit, whatever limit runs it later).
    fn for_listing(memory_bytes: u64) -> Self;
    /// The topic types a listing instance was told of (`declare-topic`).
    fn take_topics(&mut self) -> Vec<TopicDefinition>;
}

/// Why a component could not be loaded or an instance created.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine's own settings were refused (a pool too large for the machine, say).
    #[error("cannot configure the WebAssembly engine: {0}")]
    Config(String),
    /// The bytes are not a WebAssembly component (garbage, or a core module).
    #[error("not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    /// A component, but not of the `reprise:workflow/guest` world.
    #[error(
        "component does not implement the reprise:workflow guest world (build it with the reprise-guest SDK): {0}"
    )]
    WrongWorld(String),
    /// A store or an instance could not be created (the instance pool is exhausted, say).
    #[error("cannot instantiate component: {0}")]
    Instantiate(String),
    /// The instance's memory limit is below what the component's memory starts at: like any
    /// out-of-memory, a trap of the workflow, which its bounds and trap policies govern.
    #[error("cannot instantiate component: {}", .0.message)]
    OutOfMemoryAtStart(crate::limits::ClassifiedTrap),
    /// The compiled-artifact cache could not be written.
    #[error("component cache at {path}: {message}")]
    Cache {
        /// The artifact's path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A workflow or step a component defines, as `reprise inspect` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StepDefinition {
    /// The recorded name.
    pub name: String,
    /// Whether each attempt runs in a fresh instance.
    pub isolated: bool,
    /// Whether a failed attempt may be retried.
    pub retries_allowed: bool,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait before the first retry.
    pub interval_ms: u64,
    /// What each further wait is multiplied by.
    pub backoff_rate: f64,
}

/// What a component defines.
#[derive(Debug, Clone, Serialize)]
pub struct Definitions {
    /// Workflow names.
    pub workflows: Vec<String>,
    /// Steps with their retry policies.
    pub steps: Vec<StepDefinition>,
    /// The message types it declares for topics (`#[topic]`).
    pub topics: Vec<TopicDefinition>,
}

/// A message type a component declares for a topic: sends to the topic must match `schema`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TopicDefinition {
    /// The topic.
    pub name: String,
    /// The guest's type, named in refusals.
    pub type_name: String,
    /// Its JSON Schema.
    pub schema: serde_json::Value,
}

/// A compiled, linked component ready to instantiate, with what it defines.
pub struct LoadedComponent<T: 'static> {
    /// Hex SHA-256 of the component bytes: the application version.
    pub digest: String,
    pre: GuestPre<T>,
    /// The workflows and steps it exports.
    pub definitions: Definitions,
    /// The least memory limit an instance of it can start with: its largest memory's initial
    /// size.
    pub min_memory_bytes: u64,
}

impl<T> std::fmt::Debug for LoadedComponent<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("digest", &self.digest)
            .field("definitions", &self.definitions)
            .finish_non_exhaustive()
    }
}

impl<T> LoadedComponent<T> {
    /// The JSON of its declared topic types, as stored with it; `None` when it declares none.
    pub fn topics_json(&self) -> Option<String> {
        let topics = &self.definitions.topics;
        (!topics.is_empty()).then(|| serde_json::to_string(topics).unwrap_or_default())
    }

    /// Whether the component defines a workflow of this name.
    pub fn has_workflow(&self, name: &str) -> bool {
        self.definitions.workflows.iter().any(|w| w == name)
    }
}

/// Options fixed for the life of an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where compiled artifacts are kept; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Largest memory limit any instance will be given (sizes the instance pool).
    pub max_memory_bytes: u64,
    /// How many instances may be alive at once.
    pub max_instances: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            cache_dir: default_cache_dir(),
            max_memory_bytes: InstanceLimits::DEFAULT_MEMORY_BYTES,
            max_instances: 256,
        }
    }
}

/// `$REPRISE_CACHE_DIR`, else `$XDG_CACHE_HOME/reprise`, else `~/.cache/reprise`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REPRISE_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("reprise"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("reprise"))
}

/// Hex SHA-256 of a component's bytes.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The wasmtime engine with its linker and the loaded-component cache, for instances whose
/// state is `T`.
pub struct Engine<T: 'static> {
    wasm: wasmtime::Engine,
    linker: Linker<T>,
    cache_dir: Option<PathBuf>,
    /// The most memory the pool gives any instance: what listing instances are allowed, so a
    /// component with a large initial memory loads whatever limit will run it.
    listing_memory_bytes: u64,
    /// Distinguishes artifacts of engines with other settings in the same cache dir.
    config_key: String,
    loaded: Mutex<HashMap<String, Arc<LoadedComponent<T>>>>,
}

impl<T: GuestState> Engine<T> {
    /// The most memory any instance may be given: the pool's size per instance.
    pub fn max_memory_bytes(&self) -> u64 {
        self.listing_memory_bytes
    }

    /// An engine whose instance pool is sized by `options`.
    pub fn new(options: &EngineOptions) -> Result<Self, EngineError> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        config.max_wasm_stack(MAX_WASM_STACK_BYTES);
        config.async_stack_size(2 << 20);
        let pool_memory = options
            .max_memory_bytes
            .max(256 << 20)
            .checked_next_power_of_two()
            .ok_or_else(|| EngineError::Config("memory limit too large".into()))?;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(options.max_instances)
            .total_core_instances(options.max_instances * 8)
            .total_memories(options.max_instances * 2)
            .total_tables(options.max_instances * 8)
            .total_stacks(options.max_instances)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size(usize::try_from(pool_memory).unwrap_or(usize::MAX))
            // Reset the pages an instance dirtied with memset instead of madvise: each
            // madvise of a multi-threaded process costs a TLB shootdown on every core, which
            // dominated short workflows. Kernels without PAGEMAP_SCAN keep the old behaviour.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(256 << 10)
            .decommit_batch_size(32);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let wasm =
            wasmtime::Engine::new(&config).map_err(|e| EngineError::Config(format!("{e:#}")))?;

        let mut linker = Linker::new(&wasm);
        let config_err = |e: wasmtime::Error| EngineError::Config(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(config_err)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(config_err)?;
        // Files and name lookups only inside steps: wasmtime-wasi's, replaced by gated ones.
        linker.allow_shadowing(true);
        wasmtime_wasi::p2::bindings::filesystem::types::add_to_linker::<T, GatedFilesystem>(
            &mut linker,
            T::gated_filesystem,
        )
        .map_err(config_err)?;
        wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::add_to_linker::<T, GatedNameLookup>(
            &mut linker,
            T::gated_name_lookup,
        )
        .map_err(config_err)?;
        // Streams a step opened stay shut to workflow code; stdio stays open to it.
        wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<T, GatedStreams>(
            &mut linker,
            T::gated_streams,
        )
        .map_err(config_err)?;
        stdin::add_to_linker::<T, Stdio>(&mut linker, T::stdio).map_err(config_err)?;
        stdout::add_to_linker::<T, Stdio>(&mut linker, T::stdio).map_err(config_err)?;
        stderr::add_to_linker::<T, Stdio>(&mut linker, T::stdio).map_err(config_err)?;
        wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<T, GatedPoll>(
            &mut linker,
            T::gated_poll,
        )
        .map_err(config_err)?;
        // The response of a request a step sent is the step's to take.
        gate_response_futures(&mut linker).map_err(config_err)?;
        linker.allow_shadowing(false);
        Guest::add_to_linker::<T, HasSelf<T>>(&mut linker, |s| s)
            .map_err(|e| EngineError::Config(format!("{e:#}")))?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        wasm.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Engine {
            wasm,
            linker,
            cache_dir: options.cache_dir.clone(),
            listing_memory_bytes: pool_memory,
            config_key: format!("{:016x}", hasher.finish()),
            loaded: Mutex::new(HashMap::new()),
        })
    }

    /// A component already loaded in this process.
    pub fn loaded(&self, digest: &str) -> Option<Arc<LoadedComponent<T>>> {
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .cloned()
    }

    /// Compiles (or loads from the disk cache), links and inspects a component.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent<T>>, EngineError> {
        let digest = digest(bytes);
        if let Some(loaded) = self.loaded(&digest) {
            return Ok(loaded);
        }
        let component = self.compile_cached(&digest, bytes).await?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| EngineError::WrongWorld(format!("{e:#}")))?;
        let pre =
            GuestPre::new(instance_pre).map_err(|e| EngineError::WrongWorld(format!("{e:#}")))?;
        let definitions = self.read_definitions(&pre).await?;
        let min_memory_bytes = component
            .resources_required()
            .and_then(|r| r.max_initial_memory_size)
            .map_or(0, |pages| pages.saturating_mul(WASM_PAGE_BYTES));
        let loaded = Arc::new(LoadedComponent {
            digest: digest.clone(),
            pre,
            definitions,
            min_memory_bytes,
        });
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest, loaded.clone());
        Ok(loaded)
    }

    /// Creates a store for one instance with its fuel set; the caller instantiates into it.
    pub fn store(&self, state: T, fuel: u64) -> Result<Store<T>, EngineError> {
        let mut store = Store::new(&self.wasm, state);
        store.limiter(|s| s.limiter());
        store
            .set_fuel(fuel)
            .map_err(|e| EngineError::Instantiate(format!("{e:#}")))?;
        // Yield to tokio every ~10M instructions so one busy guest cannot starve the others.
        store
            .fuel_async_yield_interval(Some(FUEL_YIELD_INTERVAL))
            .map_err(|e| EngineError::Instantiate(format!("{e:#}")))?;
        store.call_hook(move |mut ctx, hook| {
            if matches!(hook, CallHook::ReturningFromHost) && ctx.data_mut().take_refuel() {
                ctx.set_fuel(fuel)?;
            }
            Ok(())
        });
        Ok(store)
    }

    /// Instantiates a component into a store.
    pub async fn instantiate(
        &self,
        component: &LoadedComponent<T>,
        store: &mut Store<T>,
    ) -> Result<Guest, EngineError> {
        component.pre.instantiate_async(store).await.map_err(|e| {
            if e.downcast_ref::<crate::limits::OutOfMemory>().is_some() {
                EngineError::OutOfMemoryAtStart(crate::limits::classify(&e, None))
            } else {
                EngineError::Instantiate(format!("{e:#}"))
            }
        })
    }

    /// Creates a store and an instance that only lists definitions: what every execution pays
    /// before it runs guest code, for `reprise bench`.
    pub async fn instantiate_for_listing(
        &self,
        component: &LoadedComponent<T>,
    ) -> Result<(), EngineError> {
        let mut store = self.store(self.listing_state(), InstanceLimits::DEFAULT_FUEL)?;
        self.instantiate(component, &mut store).await.map(drop)
    }

    fn listing_state(&self) -> T {
        T::for_listing(self.listing_memory_bytes)
    }

    async fn read_definitions(&self, pre: &GuestPre<T>) -> Result<Definitions, EngineError> {
        let mut store = self.store(self.listing_state(), InstanceLimits::DEFAULT_FUEL)?;
        let guest = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| EngineError::Instantiate(format!("{e:#}")))?;
        let defs = guest
            .call_definitions(&mut store)
            .await
            .map_err(|e| EngineError::WrongWorld(format!("listing definitions trapped: {e:#}")))?;
        Ok(Definitions {
            topics: store.data_mut().take_topics(),
            workflows: defs.workflows,
            steps: defs
                .steps
                .into_iter()
                .map(|s| StepDefinition {
                    name: s.name,
                    isolated: s.options.isolated,
                    retries_allowed: s.options.retry.retries_allowed,
                    max_attempts: s.options.retry.max_attempts,
                    interval_ms: s.options.retry.interval_ms,
                    backoff_rate: s.options.retry.backoff_rate,
                })
                .collect(),
        })
    }

    async fn compile_cached(&self, digest: &str, bytes: &[u8]) -> Result<Component, EngineError> {
        let artifact = self
            .cache_dir
            .as_ref()
            .map(|dir| dir.join(format!("{digest}-{}.cwasm", self.config_key)));
        if let Some(path) = &artifact
            && path.exists()
        {
            // SAFETY: the artifact was written by `Component::serialize` of an engine with this
            // configuration (the file name carries the digest and the configuration key);
            // wasmtime rejects artifacts of another configuration or version.
            match unsafe { Component::deserialize_file(&self.wasm, path) } {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable cached artifact: {err:#}")
                }
            }
        }
        let wasm = self.wasm.clone();
        let owned = bytes.to_vec();
        let component = tokio::task::spawn_blocking(move || Component::new(&wasm, &owned))
            .await
            .map_err(|e| EngineError::InvalidComponent(format!("compiler task failed: {e}")))?
            .map_err(|e| EngineError::InvalidComponent(format!("{e:#}")))?;
        if let Some(path) = &artifact
            && let Err(err) = write_artifact(path, &component)
        {
            tracing::warn!("cannot cache compiled component: {err}");
        }
        Ok(component)
    }
}

fn write_artifact(path: &Path, component: &Component) -> Result<(), EngineError> {
    let cache_err = |message: String| EngineError::Cache {
        path: path.to_path_buf(),
        message,
    };
    let bytes = component
        .serialize()
        .map_err(|e| cache_err(format!("{e:#}")))?;
    let dir = path
        .parent()
        .ok_or_else(|| cache_err("no parent directory".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| cache_err(e.to_string()))?;
    // Unique per write, not only per process: two engines of one process may store the same
    // component at once, and must not write into each other's file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{write}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| cache_err(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| cache_err(e.to_string()))
}

/// The `wasi:http` version whose `types` interface the linker holds.
const HTTP_TYPES: &str = "wasi:http/types@0.2.12";

/// Shadows `future-incoming-response.get`: the status, headers and body of a request a step
/// sent are the step's to take. Taken from workflow code (the future kept past the step, in a
/// static, say) it is refused like any I/O there, as an `internal-error` carrying the usual
/// message; the response stays untaken.
fn gate_response_futures<T: GuestState>(
    linker: &mut wasmtime::component::Linker<T>,
) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, HostFutureIncomingResponse};
    use wasmtime_wasi_http::p2::types::{
        HostFutureIncomingResponse as FutureResponse, HostIncomingResponse,
    };
    use wasmtime_wasi_io::poll::DynPollable;

    type Got = Option<Result<Result<Resource<HostIncomingResponse>, ErrorCode>, ()>>;
    let mut types = linker.instance(HTTP_TYPES)?;
    types.func_wrap(
        "[method]future-incoming-response.get",
        |mut store: wasmtime::StoreContextMut<'_, T>,
         (future,): (Resource<FutureResponse>,)|
         -> wasmtime::Result<(Got,)> {
            if let Err(refused) = store
                .data()
                .may_do_io("to take the response of a request a step sent")
            {
                return Ok((Some(Ok(Err(ErrorCode::InternalError(Some(refused))))),));
            }
            let mut view = store.data_mut().http();
            Ok((HostFutureIncomingResponse::get(&mut view, future)?,))
        },
    )?;
    // Its readiness is I/O too: only a step sends a request, so a pollable on its response is
    // noted for the poll gate, whoever subscribed it.
    types.func_wrap(
        "[method]future-incoming-response.subscribe",
        |mut store: wasmtime::StoreContextMut<'_, T>,
         (future,): (Resource<FutureResponse>,)|
         -> wasmtime::Result<(Resource<DynPollable>,)> {
            let mut view = store.data_mut().http();
            let pollable = HostFutureIncomingResponse::subscribe(&mut view, future)?;
            store.data_mut().note_step_pollable(pollable.rep());
            Ok((pollable,))
        },
    )
}
