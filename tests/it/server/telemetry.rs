//! Traces over OTLP: `reprise serve` with `[telemetry] otlp_endpoint` exports a trace per
//! workflow to a real OTLP/HTTP receiver started here, which decodes the protobuf it gets.
//! One workflow shows everything a trace says: a step, a step retried, a child workflow, a
//! trap and the recovery that replays what was committed.

use crate::common;
use crate::guests::CHAOS;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use common::guest;
use common::server::Server;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

/// Every span received, with the `service.name` of the resource it came under.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

/// A collector's OTLP/HTTP traces endpoint on a free loopback port.
async fn start_receiver() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(export))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn export(
    State(received): State<Received>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    received.content_types.lock().unwrap().push(content_type);
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut spans = received.spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .map(text)
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push((service.clone(), span));
            }
        }
    }
    // An empty ExportTraceServiceResponse.
    (StatusCode::OK, Vec::new())
}

fn text(value: &opentelemetry_proto::tonic::common::v1::AnyValue) -> String {
    match &value.value {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// A span's attributes as text.
fn attrs(span: &Span) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref()?))))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Multi-threaded: the receiver must answer while this thread waits for the server to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_is_one_trace_of_executions_and_step_attempts_over_otlp() {
    let (collector, received) = start_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
database = "{db}"
durability = "process"
executor_id = "traced-host"

[server]
token = "secret"

[components]
chaos = "{chaos}"

[telemetry]
otlp_endpoint = "{collector}"
service_name = "reprise-under-test"
"#,
        db = dir.path().join("traces.db").display(),
        chaos = guest(CHAOS).display(),
    );
    let mut server = Server::start(dir.path(), &config);
    let options = reprise_client::StartOptions {
        instance: Some("chaos".into()),
        id: Some("traced-1".into()),
        ..Default::default()
    };
    let view = server
        .client()
        .start_with("traced", &json!(4), &options)
        .await
        .unwrap()
        .status_at_end()
        .await
        .unwrap();
    assert_eq!(
        view.status,
        reprise_client::WorkflowStatus::Success,
        "{:?}",
        view.error
    );
    assert_eq!(view.output, Some(json!(1 + 40 + 5 + 2)));
    // A graceful stop flushes the spans still buffered.
    assert_eq!(server.signal_and_wait("TERM"), Some(0), "{}", server.log());

    let spans = received.spans.lock().unwrap().clone();
    assert!(
        received
            .content_types
            .lock()
            .unwrap()
            .iter()
            .all(|t| t == "application/x-protobuf"),
        "OTLP/HTTP protobuf"
    );
    assert!(
        spans
            .iter()
            .all(|(service, _)| service == "reprise-under-test")
    );
    let spans: Vec<Span> = spans.into_iter().map(|(_, span)| span).collect();
    let of = |id: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| attrs(s).get("reprise.workflow.id").map(String::as_str) == Some(id))
            .collect()
    };
    let parent = of("traced-1");
    let child_id = "traced-1-2";
    let child = of(child_id);
    assert!(
        !child.is_empty(),
        "the child's spans: {spans:#?}\n{}",
        server.log()
    );

    // One trace per workflow, its id derived from the workflow id.
    let trace = hex(reprise_host::telemetry::trace_id("traced-1")
        .to_bytes()
        .as_slice());
    assert!(parent.iter().all(|s| hex(&s.trace_id) == trace));
    let child_trace = hex(reprise_host::telemetry::trace_id(child_id)
        .to_bytes()
        .as_slice());
    assert!(child.iter().all(|s| hex(&s.trace_id) == child_trace));

    // The root: the whole workflow, SUCCESS, two executions.
    let roots: Vec<&&Span> = parent
        .iter()
        .filter(|s| s.name == "workflow traced")
        .collect();
    assert_eq!(roots.len(), 1, "one root span");
    let root = roots[0];
    assert!(root.parent_span_id.is_empty(), "the root has no parent");
    assert_eq!(
        hex(&root.span_id),
        hex(reprise_host::telemetry::root_span_id("traced-1")
            .to_bytes()
            .as_slice())
    );
    let root_attrs = attrs(root);
    assert_eq!(root_attrs["reprise.outcome"], "SUCCESS");
    assert_eq!(root_attrs["reprise.executions"], "2");
    assert_eq!(root_attrs["reprise.workflow.instance"], "chaos");

    // Two executions under the root: the first trapped, the recovery finished.
    let executions: BTreeMap<String, &&Span> = parent
        .iter()
        .filter(|s| s.name == "execution")
        .map(|s| (attrs(s)["reprise.execution"].clone(), s))
        .collect();
    assert_eq!(executions.len(), 2, "{executions:#?}");
    for execution in executions.values() {
        assert_eq!(execution.parent_span_id, root.span_id);
        assert_eq!(attrs(execution)["reprise.executor.id"], "traced-host");
    }
    let first = attrs(executions["1"]);
    assert_eq!(first["reprise.outcome"], "trap");
    assert_eq!(first["reprise.trap.class"], "unreachable");
    assert_eq!(attrs(executions["2"])["reprise.outcome"], "ok");

    // Step attempts under their execution: in the first, `first`, both attempts of `flaky`
    // (the first failed), the child's start and await; in the second, those replayed and
    // `second` executed.
    let steps_in = |execution: &Span| -> Vec<BTreeMap<String, String>> {
        let mut steps: Vec<(u64, BTreeMap<String, String>)> = parent
            .iter()
            .filter(|s| s.parent_span_id == execution.span_id)
            .map(|s| (s.start_time_unix_nano, attrs(s)))
            .collect();
        steps
            .sort_by_key(|(start, a)| (a["reprise.step.position"].parse::<u32>().unwrap(), *start));
        steps.into_iter().map(|(_, a)| a).collect()
    };
    let summary = |steps: &[BTreeMap<String, String>]| -> Vec<String> {
        steps
            .iter()
            .map(|a| {
                format!(
                    "{}:{}#{}{} {}",
                    a["reprise.step.position"],
                    a["reprise.step.name"],
                    a["reprise.step.attempt"],
                    if a["reprise.step.replayed"] == "true" {
                        " replayed"
                    } else {
                        ""
                    },
                    a["reprise.outcome"],
                )
            })
            .collect()
    };
    let first_steps = summary(&steps_in(executions["1"]));
    assert_eq!(first_steps.len(), 5, "{first_steps:#?}");
    assert_eq!(first_steps[0], "0:first#1 ok");
    assert_eq!(first_steps[1], "1:flaky#1 error");
    assert_eq!(first_steps[2], "1:flaky#2 ok");
    assert!(
        first_steps[3].starts_with("2:reprise.start-child"),
        "{first_steps:#?}"
    );
    assert!(
        first_steps[4].starts_with("3:reprise.await-child"),
        "{first_steps:#?}"
    );
    assert!(first_steps.iter().all(|s| !s.contains("replayed")));
    let second_steps = summary(&steps_in(executions["2"]));
    assert_eq!(second_steps.len(), 5, "{second_steps:#?}");
    assert_eq!(second_steps[0], "0:first#1 replayed ok");
    assert_eq!(second_steps[1], "1:flaky#2 replayed ok");
    assert!(second_steps[2].contains("replayed"), "{second_steps:#?}");
    assert!(second_steps[3].contains("replayed"), "{second_steps:#?}");
    assert_eq!(second_steps[4], "4:second#1 ok");
    let failed = parent
        .iter()
        .find(|s| {
            attrs(s).get("reprise.step.attempt").map(String::as_str) == Some("1")
                && attrs(s)["reprise.step.name"] == "flaky"
        })
        .unwrap();
    let status = failed
        .status
        .as_ref()
        .expect("a failed attempt has a status");
    assert!(
        status.message.contains("fails its first attempt"),
        "{status:?}"
    );

    // The child's root links to its parent's root.
    let child_root = child
        .iter()
        .find(|s| s.name == "workflow traced_child")
        .expect("the child's root");
    assert_eq!(child_root.links.len(), 1);
    assert_eq!(hex(&child_root.links[0].trace_id), trace);
    assert_eq!(child_root.links[0].span_id, root.span_id);
    assert_eq!(attrs(child_root)["reprise.parent.id"], "traced-1");
}
