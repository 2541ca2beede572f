//! The payments team's order saga (`guests/fulfilment`) under a real `reprise serve`, against
//! payment, inventory and mail services on loopback: a charge limited to two at a time across
//! the host, waiting orders that give back their worker slots, typed `shipped` messages (a
//! malformed one refused by the API and the CLI, naming the field), a refund on timeout, and a
//! host SIGKILLed mid-charge whose workflow `reprise recover --config` finishes with the same
//! idempotency key, so the customer is charged once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};

use crate::common::server::{Server, poll_within};
use crate::common::{guest, reprise_bin};
use crate::guests::FULFILMENT;

/// The saga runs several HTTP calls per order; on a loaded machine give it time.
const PATIENCE: Duration = Duration::from_secs(30);

async fn eventually<T, F, Fut>(probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    poll_within(PATIENCE, probe, done).await
}

/// What the services saw.
#[derive(Default)]
struct Seen {
    /// Charges by idempotency key: the order each charged (a repeat of a key charges nothing).
    charges: BTreeMap<String, String>,
    /// Charge requests, repeats included.
    charge_requests: Vec<String>,
    /// When each charge request came.
    charge_times: Vec<std::time::Instant>,
    /// Charges being answered now, and the most at once.
    in_flight: u32,
    most_in_flight: u32,
    refunds: Vec<String>,
    mails: Vec<String>,
    /// An order whose first charge request never gets an answer (the host dies meanwhile).
    hang_first_charge_of: Option<String>,
    /// While set, every charge waits for it to open.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

type Services = Arc<Mutex<Seen>>;

async fn charge(
    State(seen): State<Services>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let order = body["order_id"].as_str().unwrap_or("").to_string();
    let hang = {
        let mut seen = seen.lock().expect("seen");
        seen.charge_requests.push(key.clone());
        seen.charge_times.push(std::time::Instant::now());
        seen.in_flight += 1;
        seen.most_in_flight = seen.most_in_flight.max(seen.in_flight);
        seen.hang_first_charge_of.as_deref() == Some(order.as_str())
    };
    if hang {
        seen.lock().expect("seen").hang_first_charge_of = None;
        std::future::pending::<()>().await;
    }
    let gate = seen.lock().expect("seen").gate.clone();
    if let Some(gate) = gate {
        let _open = gate.acquire().await;
    }
    // Long enough for the other orders' charges to pile up behind the limit.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut seen = seen.lock().expect("seen");
    seen.in_flight -= 1;
    seen.charges.entry(key.clone()).or_insert(order);
    Json(json!({ "id": format!("ch-{key}") }))
}

fn created(
    prefix: &'static str,
) -> impl Fn(State<Services>, Json<Value>) -> std::future::Ready<Json<Value>> + Clone {
    move |State(seen): State<Services>, Json(body): Json<Value>| {
        let mut seen = seen.lock().expect("seen");
        match prefix {
            "refund" => seen
                .refunds
                .push(body["charge"].as_str().unwrap_or("").into()),
            "mail" => seen.mails.push(body["text"].as_str().unwrap_or("").into()),
            _ => {}
        }
        std::future::ready(Json(
            json!({ "id": format!("{prefix}-{}", seen.refunds.len() + seen.mails.len()) }),
        ))
    }
}

/// Starts the services; their `http://127.0.0.1:port`.
async fn services(seen: Services) -> String {
    let app = axum::Router::new()
        .route("/charges", post(charge))
        .route("/refunds", post(created("refund")))
        .route("/reservations", post(created("reservation")))
        .route("/releases", post(created("release")))
        .route("/mail", post(created("mail")))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}")
}

fn config(dir: &Path, services: &str, ship_within_ms: u32) -> String {
    config_limited(dir, services, ship_within_ms, "concurrency = 2")
}

/// The config with `limit` (a line of `[instances.orders.steps.charge]`) on the charge.
fn config_limited(dir: &Path, services: &str, ship_within_ms: u32, limit: &str) -> String {
    std::fs::write(dir.join("payment.key"), "sk_test\n").expect("key file");
    let grant = services.trim_start_matches("http://");
    format!(
        r#"
database = "{db}"
executor_id = "shop-1"

[server]
token = "secret"

[components]
fulfilment = "{component}"

[instances.orders]
component = "fulfilment"
allow_http = ["{grant}"]
secrets = {{ PAYMENT_KEY = {{ file = "payment.key" }} }}
config = {{ payments_url = "{services}", inventory_url = "{services}", mail_url = "{services}", ship_within_ms = "{ship_within_ms}" }}

[instances.orders.steps.charge]
{limit}

[queues.orders]
worker_concurrency = 4
count_waiting = false
"#,
        db = dir.join("shop.db").display(),
        component = guest(FULFILMENT).display(),
    )
}

fn order(id: &str) -> Value {
    json!({ "id": id, "email": format!("{id}@example.com"), "item": "book", "quantity": 1, "amount_cents": 4200 })
}

async fn enqueue(server: &Server, id: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/workflows", server.url))
        .bearer_auth("secret")
        .json(&json!({ "workflow": "fulfil", "input": order(id), "id": id, "instance": "orders", "queue": "orders" }))
        .send()
        .await
        .expect("enqueue");
    assert!(
        response.status().is_success(),
        "enqueue {id}: {}",
        response.status()
    );
}

async fn status_event(server: &Server, id: &str) -> Option<String> {
    let response = reqwest::Client::new()
        .get(format!(
            "{}/workflows/{id}/events/status?timeout_ms=0",
            server.url
        ))
        .bearer_auth("secret")
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["value"].as_str().map(str::to_string)
}

async fn send_shipped(server: &Server, id: &str, message: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/workflows/{id}/messages", server.url))
        .bearer_auth("secret")
        .json(&json!({ "topic": "shipped", "message": message }))
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn six_orders_charge_two_at_a_time_wait_typed_and_ship_or_refund() {
    let dir = tempfile::tempdir().expect("dir");
    let seen = Services::default();
    let url = services(seen.clone()).await;
    let server = Server::start(dir.path(), &config(dir.path(), &url, 4_000));
    let ids: Vec<String> = (1..=6).map(|n| format!("o-{n}")).collect();
    for id in &ids {
        enqueue(&server, id).await;
    }
    // All six wait for their shipment at once: four worker slots, but a waiting order gives
    // its slot back (count_waiting = false).
    let waiting = eventually(
        || async {
            let mut n = 0;
            for id in &ids {
                if status_event(&server, id).await.as_deref() == Some("awaiting shipment") {
                    n += 1;
                }
            }
            n
        },
        |n| *n == ids.len(),
    )
    .await;
    assert_eq!(
        waiting,
        ids.len(),
        "every order charged and waiting:\n{}",
        server.log()
    );
    {
        let seen = seen.lock().expect("seen");
        assert_eq!(
            seen.most_in_flight, 2,
            "the charge limit held, and was used"
        );
        assert_eq!(seen.charges.len(), 6);
    }

    // A shipment without its carrier is refused, by the API and by the CLI, and stored nowhere.
    let (status, body) = send_shipped(&server, "o-1", json!({ "tracking": "1Z1" })).await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("carrier") && error.contains("Shipped"),
        "{error}"
    );
    let cli = Command::new(reprise_bin())
        .args([
            "workflow",
            "send",
            "o-2",
            "shipped",
            r#"{"tracking": 7, "carrier": "UPS"}"#,
            "--config",
        ])
        .arg(dir.path().join("reprise.toml"))
        .output()
        .expect("workflow send");
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(cli.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/tracking") && stderr.contains("string"),
        "{stderr}"
    );

    for id in &ids[..5] {
        let (status, body) = send_shipped(
            &server,
            id,
            json!({ "tracking": format!("1Z-{id}"), "carrier": "UPS" }),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let client = server.client();
    for id in &ids {
        let outcome: Value = client.handle(id.as_str()).result().await.expect("result");
        let expected = if id == "o-6" { "refunded" } else { "shipped" };
        assert_eq!(outcome["status"], expected, "{id}: {outcome}");
        if id != "o-6" {
            assert_eq!(outcome["tracking"], format!("1Z-{id}"));
        }
    }
    let seen = seen.lock().expect("seen");
    assert_eq!(seen.charges.len(), 6, "each order charged once");
    assert_eq!(seen.mails.len(), 5);
    assert_eq!(seen.refunds.len(), 1, "o-6 was not shipped in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_charge_is_recovered_from_the_cli_and_charges_once() {
    let dir = tempfile::tempdir().expect("dir");
    let seen = Services::default();
    seen.lock().expect("seen").hang_first_charge_of = Some("o-kill".into());
    let url = services(seen.clone()).await;
    let mut server = Server::start(dir.path(), &config(dir.path(), &url, 300));
    enqueue(&server, "o-kill").await;
    eventually(
        || async { seen.lock().expect("seen").charge_requests.len() },
        |n| *n == 1,
    )
    .await;
    server.signal_and_wait("KILL");

    let recovered = Command::new(reprise_bin())
        .args(["recover", "--config"])
        .arg(dir.path().join("reprise.toml"))
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .output()
        .expect("recover");
    assert!(
        recovered.status.success(),
        "{}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    let seen = seen.lock().expect("seen");
    assert_eq!(
        seen.charge_requests.len(),
        2,
        "the charge in flight ran again"
    );
    assert_eq!(
        seen.charge_requests[0], seen.charge_requests[1],
        "with the same key"
    );
    assert_eq!(seen.charges.len(), 1, "so the service charged once");
    assert_eq!(seen.refunds.len(), 1, "then, not shipped in time, refunded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_waiting_for_a_step_slot_hold_no_instance() {
    let dir = tempfile::tempdir().expect("dir");
    let seen = Services::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    seen.lock().expect("seen").gate = Some(gate.clone());
    let url = services(seen.clone()).await;
    let server = Server::start(
        dir.path(),
        &config_limited(dir.path(), &url, 60_000, "concurrency = 1"),
    );
    for id in ["s-1", "s-2", "s-3"] {
        enqueue(&server, id).await;
    }
    // One charge runs (and hangs at the gate); the two others wait for its slot, parked.
    let waiting = eventually(|| server.parked(), |n| *n == 2).await;
    assert_eq!(waiting, 2, "{}", server.log());
    assert_eq!(
        seen.lock().expect("seen").charge_requests.len(),
        1,
        "one slot, one charge"
    );

    gate.add_permits(3);
    // Each charges in turn; then all three wait, parked, for their shipment.
    let ids = ["s-1", "s-2", "s-3"];
    let waiting = eventually(
        || async {
            let mut n = 0;
            for id in ids {
                if status_event(&server, id).await.as_deref() == Some("awaiting shipment") {
                    n += 1;
                }
            }
            n
        },
        |n| *n == 3,
    )
    .await;
    assert_eq!(waiting, 3);
    let seen = seen.lock().expect("seen");
    assert_eq!(seen.most_in_flight, 1, "never two charges at once");
    assert_eq!(seen.charges.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_step_waits_parked_for_its_window() {
    let dir = tempfile::tempdir().expect("dir");
    let seen = Services::default();
    let url = services(seen.clone()).await;
    let config = config_limited(dir.path(), &url, 60_000, r#"rate = "2/1s""#);
    let server = Server::start(dir.path(), &config);
    let ids = ["r-1", "r-2", "r-3", "r-4"];
    for id in ids {
        enqueue(&server, id).await;
    }
    let charged = eventually(
        || async { seen.lock().expect("seen").charges.len() },
        |n| *n == ids.len(),
    )
    .await;
    assert_eq!(charged, ids.len(), "{}", server.log());
    let seen = seen.lock().expect("seen");
    let times = &seen.charge_times;
    // Two charges in the first window; the third waited (parked) for the next one.
    let gap = times[2].duration_since(times[0]);
    assert!(
        gap >= Duration::from_millis(900),
        "third charge after {gap:?}"
    );
    let gap = times[3].duration_since(times[1]);
    assert!(
        gap >= Duration::from_millis(900),
        "fourth charge after {gap:?}"
    );
}

/// Starts workflow `workflow` of instance orders with `input` and returns its output.
async fn run(server: &Server, workflow: &str, input: Value) -> Value {
    let id = format!("{workflow}-{}", reprise_host::runtime::new_workflow_id());
    let response = reqwest::Client::new()
        .post(format!("{}/workflows", server.url))
        .bearer_auth("secret")
        .json(&json!({ "workflow": workflow, "input": input, "id": id, "instance": "orders" }))
        .send()
        .await
        .expect("start");
    assert!(
        response.status().is_success(),
        "start {workflow}: {}",
        response.status()
    );
    server.client().handle(id).result().await.expect("result")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_sending_a_malformed_shipment_gets_the_refusal() {
    let dir = tempfile::tempdir().expect("dir");
    let seen = Services::default();
    let url = services(seen.clone()).await;
    let server = Server::start(dir.path(), &config(dir.path(), &url, 60_000));
    enqueue(&server, "w-1").await;
    let waiting = eventually(
        || status_event(&server, "w-1"),
        |s| s.as_deref() == Some("awaiting shipment"),
    )
    .await;
    assert_eq!(waiting.as_deref(), Some("awaiting shipment"));

    let bad = json!(["w-1", { "tracking": "1Z" }]);
    let refused = run(&server, "notify_shipped", bad).await;
    let refused = refused.as_str().unwrap_or_default();
    assert!(
        refused.starts_with("refused: cannot send to w-1"),
        "{refused}"
    );
    assert!(
        refused.contains("carrier") && refused.contains("Shipped"),
        "{refused}"
    );

    let good = json!(["w-1", { "tracking": "1Z-w", "carrier": "DHL" }]);
    assert_eq!(run(&server, "notify_shipped", good).await, "sent");
    let outcome: Value = server
        .client()
        .handle("w-1")
        .result()
        .await
        .expect("result");
    assert_eq!(outcome["status"], "shipped");
    assert_eq!(
        outcome["tracking"], "1Z-w",
        "the malformed one never reached it"
    );
}
