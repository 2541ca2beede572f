//! Steps that touch the world: HTTP, TCP, files and secrets reach exactly what the instance
//! is granted, only from steps; workflow code reaches none of them. Against real servers the
//! test starts on loopback.

use crate::common;
use crate::guests::SHOP;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use common::services::{Inventory, PaymentApi};
use common::{Harness, guest, reprise_bin};
use reprise_host::grants::{DirGrant, Grants, IO_OUTSIDE_STEP, Secrets};
use reprise_host::runtime::InstanceOptions;
use reprise_host::{RuntimeOptions, WorkflowStatus};
use serde_json::{Value, json};

const KEY: &str = "sk_live_0123456789abcdef";

fn options(grants: Grants, config: &[(&str, &str)]) -> RuntimeOptions {
    let instance = InstanceOptions {
        grants: Arc::new(grants),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..InstanceOptions::default()
    };
    RuntimeOptions::single("local", instance)
}

/// Everything the checkout saga needs, granted.
fn shop_grants(payments: &PaymentApi, inventory: &Inventory) -> Grants {
    Grants {
        http: vec![format!("127.0.0.1:{}", payments.port).parse().unwrap()],
        tcp: vec![inventory.addr.parse().unwrap()],
        secrets: Secrets::new([("PAYMENT_KEY".to_string(), KEY.to_string())]),
        ..Grants::default()
    }
}

fn order() -> String {
    json!({ "id": "o-1", "item": "book", "quantity": 2, "amount_cents": 4200 }).to_string()
}

#[tokio::test]
pub(crate) async fn the_saga_reserves_over_tcp_and_charges_over_http_with_its_secret() {
    let payments = PaymentApi::start(2).await;
    let inventory = Inventory::start().await;
    let config = [
        ("payments_url", payments.url.as_str()),
        ("inventory_addr", inventory.addr.as_str()),
    ];
    let mut harness = Harness::new(options(shop_grants(&payments, &inventory), &config)).await;
    let record = harness.run(SHOP, "checkout", &order()).await;
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    let receipt: Value = serde_json::from_str(record.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        receipt,
        json!({ "order_id": "o-1", "reservation": "r-1", "charge": "ch_3" })
    );
    assert_eq!(inventory.lines(), ["RESERVE o-1 book 2"]);
    let charges = payments.charges();
    assert_eq!(charges.len(), 3, "two 503s retried, then paid");
    let bearer = format!("Bearer {KEY}");
    assert!(
        charges
            .iter()
            .all(|c| c.authorization.as_deref() == Some(bearer.as_str()))
    );
    assert_eq!(
        charges[0].body,
        json!({ "order_id": "o-1", "amount_cents": 4200 })
    );
    assert_eq!(harness.executions_of(&record.id, "charge_payment"), 3);
}

#[tokio::test]
async fn a_payment_that_never_succeeds_releases_the_stock() {
    let payments = PaymentApi::start(usize::MAX).await;
    let inventory = Inventory::start().await;
    let config = [
        ("payments_url", payments.url.as_str()),
        ("inventory_addr", inventory.addr.as_str()),
    ];
    let mut harness = Harness::new(options(shop_grants(&payments, &inventory), &config)).await;
    let record = harness.run(SHOP, "checkout", &order()).await;
    assert_eq!(record.status, WorkflowStatus::Error);
    let error = record.error.unwrap_or_default();
    assert!(error.contains("payment API answered 500"), "{error}");
    assert!(error.ends_with("stock released"), "{error}");
    assert_eq!(payments.charges().len(), 4, "every attempt of the policy");
    assert_eq!(inventory.lines(), ["RESERVE o-1 book 2", "RELEASE r-1"]);
}

#[tokio::test]
async fn hosts_not_granted_are_refused_with_the_key_that_would_grant_them() {
    let payments = PaymentApi::start(0).await;
    let inventory = Inventory::start().await;
    let config = [
        ("payments_url", payments.url.as_str()),
        ("inventory_addr", inventory.addr.as_str()),
    ];
    // HTTP to another host only; no TCP at all.
    let grants = Grants {
        http: vec!["api.example.com:443".parse().unwrap()],
        secrets: Secrets::new([("PAYMENT_KEY".to_string(), KEY.to_string())]),
        ..Grants::default()
    };
    let mut harness = Harness::new(options(grants, &config)).await;
    let url = format!("{}/ping", payments.url);
    let record = harness.run(SHOP, "fetch", &json!(url).to_string()).await;
    assert_eq!(record.status, WorkflowStatus::Error);
    let port = payments.port;
    let expected = format!(
        "HTTP to 127.0.0.1:{port} is not granted to instance \"default\": add \"127.0.0.1:{port}\" \
         to allow_http (or --allow-http 127.0.0.1:{port})"
    );
    let error = record.error.unwrap_or_default();
    assert!(error.contains(&expected), "{error}");

    let record = harness.run(SHOP, "checkout", &order()).await;
    assert_eq!(record.status, WorkflowStatus::Error);
    let error = record.error.unwrap_or_default();
    let expected = format!(
        "a TCP connection to {} is not granted to instance \"default\": add \"{}\" to allow_tcp",
        inventory.addr, inventory.addr
    );
    assert!(error.contains(&expected), "{error}");
    // A refusal is a step error like any other: retried per the step's policy (3 attempts).
    assert_eq!(harness.executions_of(&record.id, "reserve_stock"), 3);
    assert!(payments.charges().is_empty() && inventory.lines().is_empty());
}

/// A runtime whose instance is granted the shop's services and the directory `data` (where
/// `hello.txt` is written) as `/data`, with both services' addresses in its config.
async fn granted_all(
    payments: &PaymentApi,
    inventory: &Inventory,
    data: &std::path::Path,
) -> Harness {
    std::fs::write(data.join("hello.txt"), "hello").unwrap();
    let config = [
        ("payments_url", payments.url.as_str()),
        ("inventory_addr", inventory.addr.as_str()),
    ];
    let mut grants = shop_grants(payments, inventory);
    grants.dirs = vec![DirGrant::new(&data.to_string_lossy(), "/data", false).unwrap()];
    Harness::new(options(grants, &config)).await
}

/// Runs each `(workflow, input)` of the shop: each must end ERROR with the step gate's words.
async fn refused_in_workflow_code(harness: &mut Harness, runs: &[(&str, &str)]) {
    for (workflow, input) in runs {
        let record = harness.run(SHOP, workflow, &json!(input).to_string()).await;
        assert_eq!(
            record.status,
            WorkflowStatus::Error,
            "{workflow}({input}): {:?}",
            record.output
        );
        let error = record.error.unwrap_or_default();
        assert!(
            error.contains(IO_OUTSIDE_STEP),
            "{workflow}({input}): {error}"
        );
    }
}

#[tokio::test]
async fn io_from_workflow_code_is_refused_even_when_granted() {
    let payments = PaymentApi::start(0).await;
    let inventory = Inventory::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut harness = granted_all(&payments, &inventory, data.path()).await;
    let kinds = ["http", "raw_http", "secret", "tcp", "file", "dns"];
    let runs: Vec<_> = kinds
        .iter()
        .map(|k| ("io_from_workflow_code", *k))
        .collect();
    refused_in_workflow_code(&mut harness, &runs).await;
    assert!(payments.charges().is_empty() && inventory.lines().is_empty());
}

/// A file or a connection a step opened and kept (in a static) is as shut to workflow code
/// as opening one there: replay could not reproduce what it reads or writes.
#[tokio::test]
async fn io_a_step_opened_cannot_be_used_from_workflow_code_after_it() {
    let payments = PaymentApi::start(0).await;
    let inventory = Inventory::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut harness = granted_all(&payments, &inventory, data.path()).await;
    refused_in_workflow_code(
        &mut harness,
        &[("use_kept_io", "file"), ("use_kept_io", "tcp")],
    )
    .await;
    // The step's connection closes with the instance: an empty line, no command.
    let lines = inventory.lines();
    assert!(
        lines.iter().all(String::is_empty),
        "nothing reached the server from workflow code: {lines:?}"
    );
}

/// The response of a request a step sent, kept past the step, is not workflow code's to take,
/// nor to wait on.
#[tokio::test]
async fn a_response_a_step_awaited_cannot_be_taken_from_workflow_code() {
    let payments = PaymentApi::start(0).await;
    let grants = Grants {
        http: vec!["127.0.0.1:*".parse().unwrap()],
        ..Grants::default()
    };
    let mut harness = Harness::new(options(grants, &[])).await;
    let authority = payments.url.trim_start_matches("http://");
    // Taking it, or only asking whether it is ready: both are I/O.
    let runs = [
        ("take_kept_response", authority),
        ("poll_kept_response", authority),
    ];
    refused_in_workflow_code(&mut harness, &runs).await;
}

#[tokio::test]
async fn an_off_the_shelf_wasi_http_client_works_in_a_step() {
    let payments = PaymentApi::start(0).await;
    let grants = Grants {
        http: vec!["127.0.0.1:*".parse().unwrap()],
        ..Grants::default()
    };
    let mut harness = Harness::new(options(grants, &[])).await;
    let url = json!(format!("{}/ping", payments.url)).to_string();
    for workflow in ["fetch", "fetch_with_waki"] {
        let record = harness.run(SHOP, workflow, &url).await;
        assert_eq!(
            record.status,
            WorkflowStatus::Success,
            "{workflow}: {:?}",
            record.error
        );
        assert_eq!(
            record.output.as_deref(),
            Some(r#"[200,"pong"]"#),
            "{workflow}"
        );
    }
}

#[tokio::test]
async fn a_server_that_does_not_answer_fails_the_attempt_at_the_http_timeout() {
    let payments = PaymentApi::start(0).await;
    let grants = Grants {
        http: vec!["127.0.0.1:*".parse().unwrap()],
        http_timeout: std::time::Duration::from_millis(300),
        ..Grants::default()
    };
    let mut harness = Harness::new(options(grants, &[])).await;
    let url = json!(format!("{}/slow", payments.url)).to_string();
    let started = std::time::Instant::now();
    let record = harness.run(SHOP, "fetch", &url).await;
    assert_eq!(record.status, WorkflowStatus::Error);
    let error = record.error.unwrap_or_default();
    assert!(
        error.contains("timed out waiting for the response"),
        "{error}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "not the server's 60 s"
    );
}

#[tokio::test]
async fn read_only_directories_refuse_writes_and_read_write_ones_take_them() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "hello").unwrap();
    let path = data.path().to_string_lossy().to_string();
    for read_only in [true, false] {
        let grants = Grants {
            dirs: vec![DirGrant::new(&path, "/data", read_only).unwrap()],
            ..Grants::default()
        };
        let mut harness = Harness::new(options(grants, &[])).await;
        let record = harness.run(SHOP, "files", r#""hello.txt""#).await;
        assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
        let [read, write]: [String; 2] =
            serde_json::from_str(record.output.as_deref().unwrap()).unwrap();
        assert_eq!(read, "hello");
        if read_only {
            assert!(
                write.contains("writing /data/out.txt: Operation not permitted"),
                "{write}"
            );
            assert!(!data.path().join("out.txt").exists());
        } else {
            assert_eq!(write, "wrote /data/out.txt");
            assert_eq!(
                std::fs::read_to_string(data.path().join("out.txt")).unwrap(),
                "written"
            );
        }
    }
}

/// In a read-write directory a step may link within it, but not make a link that leads out:
/// the guest could not follow one, but a host process handling the directory could.
#[tokio::test]
async fn a_step_cannot_plant_a_link_that_leads_out_of_its_directory() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "hello").unwrap();
    let path = data.path().to_string_lossy().to_string();
    let grants = Grants {
        dirs: vec![DirGrant::new(&path, "/data", false).unwrap()],
        ..Grants::default()
    };
    let mut harness = Harness::new(options(grants, &[])).await;
    for target in ["../outside.txt", "/etc/passwd", "sub/../../outside.txt"] {
        let input = json!(["evil", target]).to_string();
        let record = harness.run(SHOP, "link", &input).await;
        assert_eq!(record.status, WorkflowStatus::Error, "{target}");
        let error = record.error.unwrap_or_default();
        assert!(
            error.contains("would lead out of its directory"),
            "{target}: {error}"
        );
        assert!(
            std::fs::symlink_metadata(data.path().join("evil")).is_err(),
            "{target}"
        );
    }
    let record = harness
        .run(SHOP, "link", &json!(["good", "hello.txt"]).to_string())
        .await;
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    assert_eq!(
        std::fs::read_to_string(data.path().join("good")).unwrap(),
        "hello"
    );
}

/// `reprise run` grants by flag; without the flag the refusal names it.
#[test]
fn reprise_run_grants_hosts_and_secrets_by_flag() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let payments = runtime.block_on(PaymentApi::start(0));
    let dir = tempfile::tempdir().unwrap();
    let shop = guest(SHOP);
    let url = json!(format!("{}/ping", payments.url)).to_string();
    let run = |extra: &[&str], workflow: &str, input: &str| {
        Command::new(reprise_bin())
            .arg("run")
            .arg(&shop)
            .args([workflow, input])
            .args(extra)
            .env("REPRISE_DATABASE_URL", dir.path().join("run.db"))
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .env("SHOP_KEY", KEY)
            .output()
            .unwrap()
    };
    let refused = run(&[], "fetch", &url);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let flag = format!("--allow-http 127.0.0.1:{}", payments.port);
    assert!(stderr.contains(&flag), "{stderr}");

    let granted = run(&["--allow-http", "127.0.0.1:*"], "fetch", &url);
    assert!(
        granted.status.success(),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&granted.stdout).trim(),
        r#"[200,"pong"]"#
    );

    let secret = run(&["--secret", "SHOP_KEY"], "secret_length", r#""SHOP_KEY""#);
    assert!(
        secret.status.success(),
        "{}",
        String::from_utf8_lossy(&secret.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&secret.stdout).trim(),
        KEY.len().to_string()
    );
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "hello").unwrap();
    let grant = format!("{}:/data:ro", data.path().display());
    let files = run(&["--dir", &grant], "files", r#""hello.txt""#);
    assert!(
        files.status.success(),
        "{}",
        String::from_utf8_lossy(&files.stderr)
    );
    let [read, write]: [String; 2] = serde_json::from_slice(&files.stdout).unwrap();
    assert_eq!(read, "hello");
    assert!(write.contains("Operation not permitted"), "{write}");
    let missing = run(&["--dir", "/no/such/dir:/data"], "files", r#""hello.txt""#);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("is not a directory"));

    let unset = run(&["--secret", "NOT_SET_ANYWHERE"], "secret_length", r#""X""#);
    assert_eq!(unset.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("NOT_SET_ANYWHERE is not set"));
}

/// Through `reprise serve`: a secret read from a file reaches the payment API in a step's
/// request, and its value is nowhere in the database, the API's answers or the log.
#[tokio::test]
async fn a_served_secret_reaches_its_service_and_is_stored_nowhere() {
    let payments = PaymentApi::start(0).await;
    let inventory = Inventory::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("payment.key"), format!("{KEY}\n")).unwrap();
    let shop = guest(SHOP);
    let instance = format!(
        r#"
[instances.store]
component = "shop"
config = {{ payments_url = "{payments}", inventory_addr = "{inventory}" }}
allow_http = ["127.0.0.1:{port}"]
allow_tcp = ["{inventory}"]
secrets = {{ PAYMENT_KEY = {{ file = "payment.key" }} }}
http_timeout = "5s"
"#,
        payments = payments.url,
        inventory = inventory.addr,
        port = payments.port,
    );
    let config = common::server::config(dir.path(), &instance).replace(
        "[components]\n",
        &format!("[components]\nshop = \"{}\"\n", shop.display()),
    );
    let server = common::server::Server::start(dir.path(), &config);
    let client = server.client();
    let options = reprise_client::StartOptions {
        instance: Some("store".into()),
        ..Default::default()
    };
    let order: Value = serde_json::from_str(&order()).unwrap();
    let handle = client
        .start_with("checkout", &order, &options)
        .await
        .unwrap();
    let view = handle.status_at_end().await.unwrap();
    assert_eq!(view.status, WorkflowStatus::Success, "{:?}", view.error);
    let bearer = format!("Bearer {KEY}");
    assert_eq!(
        payments.charges()[0].authorization.as_deref(),
        Some(bearer.as_str())
    );

    let mut seen = serde_json::to_string(&view).unwrap();
    seen += &serde_json::to_string(&server.steps(handle.id()).await).unwrap();
    seen += &server.log();
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("serve.db"))
        {
            seen += &String::from_utf8_lossy(&std::fs::read(&path).unwrap());
        }
    }
    assert!(
        seen.contains("ch_1"),
        "the charge was recorded where we looked"
    );
    assert!(!seen.contains(KEY), "the secret leaked");
}

/// A step puts a secret in a URL's query: the refused request's error names the host and path,
/// never the secret, in the stored error, the workflow as the CLI shows it, the logs or the
/// database file. (User info is refused by the SDK, and cut from its error the same way.)
#[test]
fn a_secret_in_a_url_is_shown_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run.db");
    let reprise = |args: &[&str]| {
        Command::new(reprise_bin())
            .args(args)
            .env("REPRISE_DATABASE_URL", &db)
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .env("RUST_LOG", "reprise=debug,guest=debug")
            .env("SHOP_KEY", KEY)
            .output()
            .unwrap()
    };
    let shop = guest(SHOP);
    let url = r#""http://127.0.0.1:9/v1/charges""#;
    let refused = reprise(&[
        "run",
        &shop.to_string_lossy(),
        "get_with_key",
        url,
        "--secret",
        "SHOP_KEY",
        "--id",
        "keyed",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        said.contains("GET http://127.0.0.1:9/v1/charges?… failed"),
        "the error still says what failed: {said}"
    );
    let shown = reprise(&["workflow", "get", "keyed", "--json"]);
    assert!(shown.status.success(), "{shown:?}");
    let mut seen = said + &String::from_utf8_lossy(&shown.stdout);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            seen += &String::from_utf8_lossy(&std::fs::read(&path).unwrap());
        }
    }
    assert!(seen.contains("v1/charges?…"), "the error is stored");
    assert!(!seen.contains(KEY), "the secret leaked");
}

/// `reprise recover` drives a workflow of an instance a server configured (`orders`); the
/// grant flags it is given apply to it, as the refusal's words promise.
#[tokio::test]
async fn the_clis_grant_flags_apply_to_a_served_instances_workflow_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("run.db");
    let reprise = |args: &[&str]| {
        Command::new(reprise_bin())
            .args(args)
            .args([
                "--secret",
                "SHOP_KEY",
                "--durability",
                "process",
                "--database",
            ])
            .arg(&db)
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .env("SHOP_KEY", KEY)
            .output()
            .unwrap()
    };
    let shop = guest(SHOP).to_string_lossy().into_owned();
    // Stores the component, as a server would have.
    let first = reprise(&[
        "run",
        &shop,
        "secret_length",
        r#""SHOP_KEY""#,
        "--id",
        "here",
    ]);
    assert!(first.status.success(), "{first:?}");
    let store =
        reprise_host::SqliteStore::open(&db.to_string_lossy(), reprise_host::Durability::Process)
            .await
            .unwrap();
    use reprise_host::store::roles::*;
    let version = store
        .get_workflow("here")
        .await
        .unwrap()
        .unwrap()
        .app_version;
    // A workflow a server started on its instance `orders` and left PENDING.
    store
        .insert_workflow(&reprise_host::store::NewWorkflow {
            instance: "orders".into(),
            begin_execution: true,
            ..reprise_host::store::NewWorkflow::new(
                "orders-1",
                "secret_length",
                r#""SHOP_KEY""#,
                "local",
                &version,
            )
        })
        .await
        .unwrap();
    let recovered = reprise(&["recover"]);
    assert!(
        recovered.status.success(),
        "{}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    let done = store.get_workflow("orders-1").await.unwrap().unwrap();
    assert_eq!(done.status, WorkflowStatus::Success, "{:?}", done.error);
    assert_eq!(done.output.as_deref(), Some(KEY.len().to_string().as_str()));
}

/// `--config reprise.toml` gives a CLI command what `serve` has: the database, the executor id
/// and each instance with its grants. A workflow of instance `orders` runs and is recovered
/// from the CLI with the secret the file grants; grant flags beside the file are refused.
#[tokio::test]
async fn cli_commands_take_the_servers_instances_from_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("served.db");
    let shop = guest(SHOP).to_string_lossy().into_owned();
    let toml = dir.path().join("reprise.toml");
    std::fs::write(
        &toml,
        format!(
            "database = {db:?}\ndurability = \"process\"\nexecutor_id = \"host-a\"\n\
             [server]\ntoken = \"t\"\n[components]\nshop = {shop:?}\n\
             [instances.orders]\ncomponent = \"shop\"\n\
             secrets = {{ SHOP_KEY = {{ env = \"SHOP_KEY\" }} }}\n",
            db = db.to_string_lossy(),
        ),
    )
    .unwrap();
    let toml = toml.to_string_lossy().into_owned();
    let reprise = |args: &[&str]| {
        Command::new(reprise_bin())
            .args(args)
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .env("SHOP_KEY", KEY)
            .output()
            .unwrap()
    };
    let length = KEY.len().to_string();
    let ran = reprise(&[
        "run",
        &shop,
        "secret_length",
        r#""SHOP_KEY""#,
        "--instance",
        "orders",
        "--id",
        "o-1",
        "--config",
        &toml,
    ]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), length);

    let both = reprise(&["recover", "--config", &toml, "--secret", "SHOP_KEY"]);
    assert_eq!(both.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("the instances' grants come from the file"),
        "{both:?}"
    );

    use reprise_host::store::roles::*;
    let store =
        reprise_host::SqliteStore::open(&db.to_string_lossy(), reprise_host::Durability::Process)
            .await
            .unwrap();
    let ran = store.get_workflow("o-1").await.unwrap().unwrap();
    assert_eq!(
        (ran.instance.as_str(), ran.executor_id.as_str()),
        ("orders", "host-a")
    );
    store
        .insert_workflow(&reprise_host::store::NewWorkflow {
            instance: "orders".into(),
            begin_execution: true,
            ..reprise_host::store::NewWorkflow::new(
                "o-2",
                "secret_length",
                r#""SHOP_KEY""#,
                "host-a",
                &ran.app_version,
            )
        })
        .await
        .unwrap();
    let recovered = reprise(&["recover", "--config", &toml]);
    assert!(
        recovered.status.success(),
        "{}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    let done = store.get_workflow("o-2").await.unwrap().unwrap();
    assert_eq!(done.status, WorkflowStatus::Success, "{:?}", done.error);
    assert_eq!(done.output.as_deref(), Some(length.as_str()));

    // The commands that only read the database find it through the file too.
    let shown = reprise(&["workflow", "get", "o-2", "--json", "--config", &toml]);
    assert!(shown.status.success(), "{shown:?}");
    assert!(String::from_utf8_lossy(&shown.stdout).contains("\"orders\""));
    let executors = reprise(&["executors", "--json", "--config", &toml]);
    assert!(executors.status.success(), "{executors:?}");
    assert!(String::from_utf8_lossy(&executors.stdout).contains("host-a"));
}
