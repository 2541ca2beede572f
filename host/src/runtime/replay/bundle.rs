//! Repro bundles: one file holding what a workflow's replay needs — its component's bytes, its
//! row and its history — and what explains it: the messages it consumed, its children's ends
//! (or their own bundles), the settings that shape its instance (limits, the virtual clock's
//! start and the random seed). Never a secret's value: grants by name only. A bundle replays
//! with no database, and imports into another one.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Replay, Replayed, dry_replay};
use crate::engine;
use crate::limits::InstanceLimits;
use crate::runtime::error::RuntimeError;
use crate::runtime::execution::instance::{LoadedComponent, WorkflowEngine};
use crate::runtime::shared::Shared;
use reprise_store::{
    MessageRecord, StepRecord, WorkflowEnd, WorkflowFilter, WorkflowRecord, WorkflowStatus, now_ms,
};

/// What a bundle file says it is; another format is refused.
pub const FORMAT: &str = "reprise-bundle/1";

/// One workflow, exported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// When it was written (ms since the epoch).
    pub exported_at: i64,
    /// The workflow's row.
    pub workflow: WorkflowRecord,
    /// Its recorded history, in position order.
    pub steps: Vec<StepRecord>,
    /// The component version it runs on.
    pub component: BundledComponent,
    /// The messages it received (their values are also in its history).
    pub messages: Vec<MessageRecord>,
    /// Its children and how each ended.
    pub children: Vec<BundledChild>,
    /// What shapes its instance.
    pub settings: Settings,
    /// What its instance's steps were granted, by name.
    pub grants: GrantNames,
}

/// A component's bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundledComponent {
    /// Its content digest.
    pub digest: String,
    /// Its bytes, in hex.
    pub wasm_hex: String,
}

/// A child of the exported workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundledChild {
    /// Its id.
    pub id: String,
    /// Its status when exported.
    pub status: WorkflowStatus,
    /// Its output (JSON text), if it succeeded.
    pub output: Option<String>,
    /// Its error, if it failed.
    pub error: Option<String>,
    /// Its own bundle, with `--children`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<Box<Bundle>>,
}

/// The settings that decide what the workflow's code sees and may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Memory limit of its instance (bytes).
    pub memory_bytes: u64,
    /// Fuel per stretch of code between durable calls.
    pub fuel: u64,
    /// Largest output (bytes).
    pub max_output_bytes: u64,
    /// Where its virtual clock starts (its creation time, ms) and what seeds its random
    /// (its id): the same on every replay.
    pub clock_start_ms: i64,
    /// The seed of its virtual random.
    pub random_seed: String,
    /// The engine it ran on: what else decides where a guest traps.
    #[serde(default)]
    pub engine: EngineSettings,
}

/// The engine settings a replay elsewhere should match.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EngineSettings {
    /// The wasmtime version.
    pub wasmtime: String,
    /// The deepest the guest's wasm stack may grow.
    pub max_wasm_stack_bytes: u64,
    /// Fuel between the guest's yields.
    pub fuel_yield_interval: u64,
}

/// Grants by name: hosts, directories as the guest sees them, secret names.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GrantNames {
    /// HTTP host patterns.
    pub http: Vec<String>,
    /// TCP host patterns.
    pub tcp: Vec<String>,
    /// Directories, by the guest's path.
    pub dirs: Vec<String>,
    /// Secret names; never their values.
    pub secrets: Vec<String>,
}

impl Bundle {
    /// The bundle in `text`, refused when it is not one this version reads.
    pub fn parse(text: &str) -> Result<Bundle, String> {
        let bundle: Bundle =
            serde_json::from_str(text).map_err(|e| format!("not a Reprise bundle: {e}"))?;
        if bundle.format != FORMAT {
            return Err(format!(
                "a bundle of format {:?}; this version reads {FORMAT:?}",
                bundle.format
            ));
        }
        Ok(bundle)
    }

    /// The component's bytes.
    pub fn wasm(&self) -> Result<Vec<u8>, String> {
        hex::decode(&self.component.wasm_hex)
            .map_err(|e| format!("the bundle's component is not hex: {e}"))
    }
}

/// Exports workflow `id`, with its children's bundles when `children`.
pub(crate) async fn export(
    shared: &Arc<Shared>,
    id: &str,
    children: bool,
) -> Result<Bundle, RuntimeError> {
    let workflow = shared.workflow(id).await?;
    let store = &shared.store;
    let steps = store.steps(id).await?;
    let bytes = store
        .get_component(&workflow.app_version)
        .await?
        .ok_or_else(|| RuntimeError::MissingComponent(workflow.app_version.clone()))?;
    let messages = store.messages(id).await?;
    let mut bundled = Vec::new();
    let filter = WorkflowFilter {
        parent: Some(id.to_string()),
        ..WorkflowFilter::default()
    };
    for child in store.list_workflows(&filter).await? {
        let bundle = if children {
            Some(Box::new(Box::pin(export(shared, &child.id, true)).await?))
        } else {
            None
        };
        bundled.push(BundledChild {
            id: child.id,
            status: child.status,
            output: child.output,
            error: child.error,
            bundle,
        });
    }
    let instance = shared.instance(&workflow.instance);
    let limits = shared.limits(&workflow);
    let grants = &instance.grants;
    Ok(Bundle {
        format: FORMAT.to_string(),
        exported_at: now_ms(),
        steps,
        component: BundledComponent {
            digest: workflow.app_version.clone(),
            wasm_hex: hex::encode(bytes),
        },
        messages,
        children: bundled,
        settings: Settings {
            memory_bytes: limits.memory_bytes,
            fuel: limits.fuel,
            max_output_bytes: limits.max_output_bytes,
            clock_start_ms: workflow.created_at,
            random_seed: workflow.id.clone(),
            engine: EngineSettings {
                wasmtime: engine::WASMTIME_VERSION.to_string(),
                max_wasm_stack_bytes: engine::MAX_WASM_STACK_BYTES as u64,
                fuel_yield_interval: engine::FUEL_YIELD_INTERVAL,
            },
        },
        grants: GrantNames {
            http: grants.http.iter().map(ToString::to_string).collect(),
            tcp: grants.tcp.iter().map(ToString::to_string).collect(),
            dirs: grants.dirs.iter().map(|d| d.guest_path.clone()).collect(),
            secrets: grants.secrets.names().map(str::to_string).collect(),
        },
        workflow,
    })
}

/// Replays a bundle with no database: on its own component, or on `to`.
pub async fn replay_bundle(
    engine: &WorkflowEngine,
    bundle: &Bundle,
    to: Option<Arc<LoadedComponent>>,
    until: Option<u32>,
) -> Result<Replayed, RuntimeError> {
    let component = match to {
        Some(component) => component,
        None => {
            let bytes = bundle.wasm().map_err(RuntimeError::InvalidInput)?;
            engine.load(&bytes).await?
        }
    };
    let mut steps = bundle.steps.clone();
    if let Some(until) = until {
        steps.retain(|s| s.function_id < until);
    }
    let limits = InstanceLimits {
        memory_bytes: bundle.settings.memory_bytes,
        fuel: bundle.settings.fuel,
        max_output_bytes: bundle.settings.max_output_bytes,
    };
    let replay: Replay =
        dry_replay(engine, &component, &bundle.workflow, steps.clone(), limits).await?;
    Ok(Replayed {
        workflow: bundle.workflow.clone(),
        steps,
        component: component.digest.clone(),
        replay,
    })
}

/// Loads a bundle into this runtime's database under its own id, owned by this executor:
/// `PAUSED` (an operator resumes it) when `paused`, else `PENDING` for its recovery.
pub(crate) async fn import(
    shared: &Arc<Shared>,
    bundle: &Bundle,
    paused: bool,
) -> Result<WorkflowRecord, RuntimeError> {
    let bytes = bundle.wasm().map_err(RuntimeError::InvalidInput)?;
    let component = shared.engine.load(&bytes).await?;
    if component.digest != bundle.component.digest {
        return Err(RuntimeError::InvalidInput(format!(
            "the bundle's component hashes to {}, not the {} it names",
            component.digest, bundle.component.digest
        )));
    }
    shared
        .store
        .put_component(
            &component.digest,
            &bytes,
            component.topics_json().as_deref(),
        )
        .await?;
    let mut workflow = bundle.workflow.clone();
    workflow.executor_id = shared.options.executor_id.clone();
    workflow.parent_workflow_id = None;
    workflow.queue_name = None;
    workflow.epoch = 0;
    // An ended workflow comes over as it ended, for a look or a replay; any other is to run.
    let active = !workflow.status.is_terminal();
    if active {
        workflow.status = WorkflowStatus::Pending;
    }
    shared
        .store
        .import_workflow(&workflow, &bundle.steps)
        .await?;
    if paused && active {
        let end = WorkflowEnd::Paused(format!(
            "imported from a bundle exported at {}: resume it to run it here",
            bundle.exported_at
        ));
        return shared.finish(&workflow.id, &end, workflow.epoch).await;
    }
    shared.workflow(&workflow.id).await
}
