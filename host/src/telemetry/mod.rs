//! OpenTelemetry traces, exported over OTLP/HTTP when an endpoint is configured.
//!
//! One trace per workflow, whichever hosts run it: its trace id and its root span's id are
//! derived from the workflow id, so every execution (the first run, each recovery, each
//! adopting host) joins the same trace without storing anything. The spans:
//!
//! - `workflow <name>`: the root, emitted once by the host that sees the workflow end, from
//!   its creation to its end, with the final status. A child workflow's root links to its
//!   parent's root (derived the same way from `parent_workflow_id`).
//! - `execution`: one per stretch of running, a child of the root: the first run, each
//!   recovery after a trap or a crash, and each resumption after a parked wait (same
//!   execution number, `reprise.execution.resumed = true`: a wait is not a recovery).
//! - `step <name>`: one per step attempt, a child of its execution; a step replayed from
//!   its recorded outcome is a span of no duration with `reprise.step.replayed = true`.
//!
//! Off by default at no cost: no tracer exists, and every hook is one `Option` check. Spans
//! go to a batch processor on the tokio runtime, so exporting never blocks a workflow;
//! [`Telemetry::shutdown`] flushes what is left when the process exits.

mod client;

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt,
    TraceFlags, TraceId, TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SdkTracer, SdkTracerProvider, Span as SdkSpan,
};
use sha2::{Digest, Sha256};

use crate::limits::TrapClass;
use reprise_store::{StepRecord, WorkflowRecord, WorkflowStatus};

/// Where traces go: read from `[telemetry]` and the environment by the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    /// The full URL spans are POSTed to.
    pub traces_url: String,
    /// `service.name` of every span.
    pub service_name: String,
}

/// How long one export request may take; the batch processor retries a failed one.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long exiting waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Error messages become span status descriptions; a guest's error can be megabytes.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The endpoint in the config or the environment is not usable.
    #[error("telemetry: {0}")]
    Config(String),
    /// The exporter refused its settings.
    #[error("cannot start the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The runtime's tracing handle: off, or a tracer exporting to one OTLP endpoint. Cheap to
/// clone; every clone shares the exporter.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    traces_url: String,
    shut_down: AtomicBool,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Telemetry({})", self.describe())
    }
}

impl Drop for Inner {
    /// Not shut down explicitly (an error path): the SDK's own drop would block this thread
    /// on the export task, which may need this very thread; a thread of its own may block.
    fn drop(&mut self) {
        if !self.shut_down.swap(true, Ordering::SeqCst) {
            let provider = self.provider.clone();
            let _ = std::thread::Builder::new()
                .name("otlp-shutdown".into())
                .spawn(move || provider.shutdown());
        }
    }
}

impl Telemetry {
    /// No tracer: every hook returns at once.
    pub fn off() -> Self {
        Telemetry::default()
    }

    /// Starts exporting to `target`, or stays off without one. Runs inside a tokio runtime,
    /// which the exporting task is spawned on.
    pub fn start(target: Option<&OtlpTarget>) -> Result<Self, TelemetryError> {
        let Some(target) = target else {
            return Ok(Telemetry::off());
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client::OtlpClient::new(EXPORT_TIMEOUT))
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(target.traces_url.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .build()?;
        let processor =
            BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let resource = Resource::builder()
            .with_service_name(target.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        // Every span is kept: a sampled-out execution would leave holes in a workflow's
        // story that no backend can explain. Sample in the collector.
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .with_sampler(Sampler::AlwaysOn)
            .with_id_generator(WorkflowIds::default())
            .build();
        let scope = InstrumentationScope::builder("reprise")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let tracer = provider.tracer_with_scope(scope);
        Ok(Telemetry {
            inner: Some(Arc::new(Inner {
                provider,
                tracer,
                traces_url: target.traces_url.clone(),
                shut_down: AtomicBool::new(false),
            })),
        })
    }

    /// Whether spans are exported.
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Where traces go, or `off`: for the startup log line.
    pub fn describe(&self) -> String {
        match &self.inner {
            Some(inner) => inner.traces_url.clone(),
            None => "off".to_string(),
        }
    }

    /// Exports the spans still buffered and stops; spans ended afterwards are dropped. Waits
    /// at most a few seconds: an unreachable collector must not hold up an exit.
    pub async fn shutdown(&self) {
        let Some(inner) = &self.inner else { return };
        if inner.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        // The SDK blocks its caller until the export task (on this runtime) is done.
        let provider = inner.provider.clone();
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown());
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, flushed).await {
            Ok(Ok(Ok(()))) => tracing::debug!("traces flushed"),
            Ok(Ok(Err(err))) => tracing::warn!("traces not all exported at exit: {err}"),
            Ok(Err(err)) => tracing::warn!("traces not all exported at exit: {err}"),
            Err(_) => tracing::warn!(
                timeout_ms = SHUTDOWN_TIMEOUT.as_millis() as u64,
                "traces not all exported at exit: the OTLP collector did not answer in time"
            ),
        }
    }

    /// An execution of `workflow` starts on `executor_id`; `resumed` when it goes on after a
    /// parked wait rather than starting (or recovering) the workflow.
    pub(crate) fn execution_started(
        &self,
        workflow: &WorkflowRecord,
        executor_id: &str,
        resumed: bool,
    ) -> ExecutionSpan {
        let Some(inner) = &self.inner else {
            return ExecutionSpan::default();
        };
        let workflow_id: Arc<str> = Arc::from(workflow.id.as_str());
        let workflow_name: Arc<str> = Arc::from(workflow.name.as_str());
        let execution = i64::from(workflow.executions);
        let builder = SpanBuilder::from_name("execution")
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new("reprise.workflow.id", workflow_id.clone()),
                KeyValue::new("reprise.workflow.name", workflow_name.clone()),
                KeyValue::new("reprise.workflow.instance", workflow.instance.clone()),
                KeyValue::new("reprise.execution", execution),
                KeyValue::new("reprise.execution.resumed", resumed),
                KeyValue::new("reprise.executor.id", executor_id.to_string()),
            ]);
        let span = inner
            .tracer
            .build_with_context(builder, &root_context(&workflow.id));
        ExecutionSpan {
            inner: Some(Arc::new(Execution {
                tracer: inner.tracer.clone(),
                cx: Context::new().with_span(span),
                workflow_id,
                workflow_name,
                execution,
                attempt: Mutex::new(None),
            })),
        }
    }

    /// `workflow` reached a terminal status here: its root span, from its creation to now.
    /// A paused workflow is not over, so it gets none yet.
    pub(crate) fn workflow_finished(&self, workflow: &WorkflowRecord) {
        let Some(inner) = &self.inner else { return };
        if !workflow.status.is_terminal() {
            return;
        }
        let mut attributes = vec![
            KeyValue::new("reprise.workflow.id", workflow.id.clone()),
            KeyValue::new("reprise.workflow.name", workflow.name.clone()),
            KeyValue::new("reprise.workflow.instance", workflow.instance.clone()),
            KeyValue::new("reprise.outcome", workflow.status.as_str()),
            KeyValue::new("reprise.executions", i64::from(workflow.executions)),
        ];
        if let Some(class) = &workflow.trap_class {
            attributes.push(KeyValue::new("reprise.trap.class", class.clone()));
        }
        let mut links = Vec::new();
        if let Some(parent) = &workflow.parent_workflow_id {
            attributes.push(KeyValue::new("reprise.parent.id", parent.clone()));
            links.push(Link::with_context(root_span_context(parent)));
        }
        let end = at_ms(workflow.updated_at.max(workflow.created_at));
        let builder = SpanBuilder::from_name(format!("workflow {}", workflow.name))
            .with_kind(SpanKind::Internal)
            .with_start_time(at_ms(workflow.created_at))
            .with_attributes(attributes)
            .with_links(links);
        let ids = (trace_id(&workflow.id), root_span_id(&workflow.id));
        let mut span = WorkflowIds::fixed(ids, || {
            inner.tracer.build_with_context(builder, &Context::new())
        });
        match workflow.status {
            WorkflowStatus::Success | WorkflowStatus::Cancelled => {}
            _ => {
                let message = workflow
                    .error
                    .as_deref()
                    .unwrap_or(workflow.status.as_str());
                span.set_status(Status::error(capped(message)));
            }
        }
        span.end_with_timestamp(end);
    }
}

/// How an execution (or the step attempt it was in) ended, as spans say it.
#[derive(Debug, Clone)]
pub(crate) struct Ending<'a> {
    /// `ok`, `error`, `trap`, `parked`, `cancelled` or `host_failure`.
    pub(crate) outcome: &'static str,
    pub(crate) trap: Option<TrapClass>,
    /// Why it failed, for the span's error status.
    pub(crate) message: Option<Cow<'a, str>>,
}

impl<'a> Ending<'a> {
    /// Ended without failing: `ok`, `parked`, `cancelled`.
    pub(crate) fn plain(outcome: &'static str) -> Self {
        Ending {
            outcome,
            trap: None,
            message: None,
        }
    }

    /// Failed with `message`: `error` or `host_failure`.
    pub(crate) fn failed(outcome: &'static str, message: impl Into<Cow<'a, str>>) -> Self {
        Ending {
            outcome,
            trap: None,
            message: Some(message.into()),
        }
    }

    /// The instance trapped.
    pub(crate) fn trapped(class: TrapClass, message: &'a str) -> Self {
        Ending {
            outcome: "trap",
            trap: Some(class),
            message: Some(message.into()),
        }
    }

    fn apply(&self, span: &mut impl opentelemetry::trace::Span) {
        span.set_attribute(KeyValue::new("reprise.outcome", self.outcome));
        if let Some(class) = self.trap {
            span.set_attribute(KeyValue::new("reprise.trap.class", class.as_str()));
        }
        if let Some(message) = &self.message {
            span.set_status(Status::error(capped(message)));
        }
    }
}

/// The span of one execution, and of the step attempt in progress in it. Default: off.
#[derive(Clone, Default)]
pub(crate) struct ExecutionSpan {
    inner: Option<Arc<Execution>>,
}

struct Execution {
    tracer: SdkTracer,
    /// Holds the execution's span: the parent of its steps.
    cx: Context,
    workflow_id: Arc<str>,
    workflow_name: Arc<str>,
    execution: i64,
    attempt: Mutex<Option<Attempt>>,
}

struct Attempt {
    span: SdkSpan,
    /// Set when the attempt's isolated instance trapped: a step error, but a trap.
    trap: Option<TrapClass>,
}

impl Execution {
    fn step_span(&self, function_id: u32, name: &str, attempt: u32, replayed: bool) -> SdkSpan {
        let builder = SpanBuilder::from_name(format!("step {name}"))
            .with_kind(SpanKind::Internal)
            .with_attributes([
                KeyValue::new("reprise.workflow.id", self.workflow_id.clone()),
                KeyValue::new("reprise.workflow.name", self.workflow_name.clone()),
                KeyValue::new("reprise.execution", self.execution),
                KeyValue::new("reprise.step.name", name.to_string()),
                KeyValue::new("reprise.step.position", i64::from(function_id)),
                KeyValue::new("reprise.step.attempt", i64::from(attempt)),
                KeyValue::new("reprise.step.replayed", replayed),
            ]);
        self.tracer.build_with_context(builder, &self.cx)
    }

    fn open_attempt(&self) -> std::sync::MutexGuard<'_, Option<Attempt>> {
        self.attempt.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ExecutionSpan {
    /// A step's recorded outcome is replayed: its code does not run.
    pub(crate) fn step_replayed(&self, step: &StepRecord) {
        let Some(execution) = &self.inner else { return };
        let mut span = execution.step_span(step.function_id, &step.name, step.attempts, true);
        match &step.error {
            None => Ending::plain("ok").apply(&mut span),
            Some(failure) => Ending::failed("error", &failure.message).apply(&mut span),
        }
        span.end();
    }

    /// Attempt `attempt` of the step at `function_id` starts.
    pub(crate) fn attempt_started(&self, function_id: u32, name: &str, attempt: u32) {
        let Some(execution) = &self.inner else { return };
        let span = execution.step_span(function_id, name, attempt, false);
        let stale = execution
            .open_attempt()
            .replace(Attempt { span, trap: None });
        if let Some(mut stale) = stale {
            stale.span.end();
        }
    }

    /// The attempt in progress ended: its output was accepted (`None`) or it failed.
    pub(crate) fn attempt_ended(&self, error: Option<&str>) {
        let Some(execution) = &self.inner else { return };
        let Some(mut attempt) = execution.open_attempt().take() else {
            return;
        };
        let ending = match (attempt.trap, error) {
            (Some(class), message) => Ending::trapped(class, message.unwrap_or("trapped")),
            (None, Some(message)) => Ending::failed("error", message),
            (None, None) => Ending::plain("ok"),
        };
        ending.apply(&mut attempt.span);
        attempt.span.end();
    }

    /// The attempt in progress ran in an isolated instance that trapped.
    pub(crate) fn attempt_trapped(&self, class: TrapClass) {
        let Some(execution) = &self.inner else { return };
        if let Some(attempt) = execution.open_attempt().as_mut() {
            attempt.trap = Some(class);
        }
    }

    /// The execution ended as `ending` says; so did a step attempt still in progress.
    pub(crate) fn ended(&self, ending: Ending<'_>) {
        let Some(execution) = &self.inner else { return };
        if let Some(mut attempt) = execution.open_attempt().take() {
            ending.apply(&mut attempt.span);
            attempt.span.end();
        }
        let span = execution.cx.span();
        span.set_attribute(KeyValue::new("reprise.outcome", ending.outcome));
        if let Some(class) = ending.trap {
            span.set_attribute(KeyValue::new("reprise.trap.class", class.as_str()));
        }
        if let Some(message) = &ending.message {
            span.set_status(Status::error(capped(message)));
        }
        span.end();
    }
}

/// The trace of workflow `id`: the first 16 bytes of sha256("reprise/trace/" + id).
pub fn trace_id(id: &str) -> TraceId {
    let digest = Sha256::digest(format!("reprise/trace/{id}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // The all-zero id is invalid; 2^-128 away, but a span must never be dropped for it.
    if bytes == [0; 16] {
        bytes[15] = 1;
    }
    TraceId::from_bytes(bytes)
}

/// The root span of workflow `id`: the first 8 bytes of sha256("reprise/span/" + id).
pub fn root_span_id(id: &str) -> SpanId {
    let digest = Sha256::digest(format!("reprise/span/{id}"));
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    if bytes == [0; 8] {
        bytes[7] = 1;
    }
    SpanId::from_bytes(bytes)
}

/// The root span of workflow `id` as a parent or a link target: emitted elsewhere or later,
/// so remote.
fn root_span_context(id: &str) -> SpanContext {
    SpanContext::new(
        trace_id(id),
        root_span_id(id),
        TraceFlags::SAMPLED,
        true,
        TraceState::NONE,
    )
}

fn root_context(id: &str) -> Context {
    Context::new().with_remote_span_context(root_span_context(id))
}

thread_local! {
    /// Ids the next span built on this thread takes instead of random ones.
    static FIXED_IDS: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
}

/// Random ids, except for a root span built inside [`WorkflowIds::fixed`]: the SDK takes a
/// span's ids only from its generator, and a root's must be derived from its workflow.
#[derive(Debug, Default)]
struct WorkflowIds {
    random: RandomIdGenerator,
}

impl WorkflowIds {
    /// Runs `build` (which builds one span, synchronously) with the ids `ids`.
    fn fixed<T>(ids: (TraceId, SpanId), build: impl FnOnce() -> T) -> T {
        FIXED_IDS.with(|fixed| fixed.set(Some(ids)));
        let built = build();
        FIXED_IDS.with(|fixed| fixed.set(None));
        built
    }
}

impl IdGenerator for WorkflowIds {
    fn new_trace_id(&self) -> TraceId {
        match FIXED_IDS.with(Cell::get) {
            Some((trace, _)) => trace,
            None => self.random.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        match FIXED_IDS.with(Cell::get) {
            Some((_, span)) => span,
            None => self.random.new_span_id(),
        }
    }
}

/// A time in ms since the epoch.
fn at_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `message` cut at [`MAX_MESSAGE_BYTES`] on a character boundary.
fn capped(message: &str) -> Cow<'static, str> {
    if message.len() <= MAX_MESSAGE_BYTES {
        return Cow::Owned(message.to_string());
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &message[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_from_the_workflow_id_alone() {
        assert_eq!(trace_id("order-1"), trace_id("order-1"));
        assert_ne!(trace_id("order-1"), trace_id("order-2"));
        assert_ne!(root_span_id("order-1"), root_span_id("order-2"));
        let digest = Sha256::digest(b"reprise/trace/order-1");
        assert_eq!(
            format!("{}", trace_id("order-1")),
            hex::encode(&digest[..16])
        );
    }

    #[test]
    fn fixed_ids_apply_inside_the_closure_only() {
        let ids = WorkflowIds::default();
        let fixed = (trace_id("w"), root_span_id("w"));
        let inside = WorkflowIds::fixed(fixed, || (ids.new_trace_id(), ids.new_span_id()));
        assert_eq!(inside, fixed);
        assert_ne!(ids.new_span_id(), fixed.1);
    }

    #[test]
    fn off_costs_nothing_and_does_nothing() {
        let telemetry = Telemetry::off();
        assert!(!telemetry.is_on());
        assert_eq!(telemetry.describe(), "off");
        let record = WorkflowRecord::example("w", WorkflowStatus::Pending);
        let span = telemetry.execution_started(&record, "local", false);
        assert!(span.inner.is_none());
        span.attempt_started(0, "s", 1);
        span.attempt_ended(None);
        span.ended(Ending::plain("ok"));
        telemetry.workflow_finished(&record);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = capped(&long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES + "…".len());
        assert!(cut.ends_with('…'));
        assert_eq!(capped("short"), "short");
    }
}
