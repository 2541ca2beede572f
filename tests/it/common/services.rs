//! Outside services a step talks to, started by the test on loopback: a payment API over
//! HTTP and an inventory service over TCP, each recording what it was sent.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One request the payment API received.
#[derive(Debug, Clone)]
pub struct Charge {
    pub authorization: Option<String>,
    pub body: serde_json::Value,
}

#[derive(Clone)]
struct Payments {
    failures_first: usize,
    charges: Arc<Mutex<Vec<Charge>>>,
}

/// A payment API on a free port: `POST /charges` answers 503 to its first `failures_first`
/// requests (500 forever with `usize::MAX`), then 201 `{"id": "ch_<n>"}`.
pub struct PaymentApi {
    pub url: String,
    pub port: u16,
    charges: Arc<Mutex<Vec<Charge>>>,
}

impl PaymentApi {
    pub async fn start(failures_first: usize) -> PaymentApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let charges = Arc::new(Mutex::new(Vec::new()));
        let state = Payments {
            failures_first,
            charges: charges.clone(),
        };
        let app = axum::Router::new()
            .route("/charges", axum::routing::post(charge))
            .route("/ping", axum::routing::get(|| async { "pong" }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    "late"
                }),
            )
            .with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await });
        PaymentApi {
            url: format!("http://127.0.0.1:{port}"),
            port,
            charges,
        }
    }

    pub fn charges(&self) -> Vec<Charge> {
        self.charges.lock().expect("lock").clone()
    }
}

async fn charge(
    State(state): State<Payments>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let mut charges = state.charges.lock().expect("lock");
    charges.push(Charge {
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    });
    let n = charges.len();
    if n <= state.failures_first {
        let status = if state.failures_first == usize::MAX {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return (status, "try again".into());
    }
    (StatusCode::CREATED, format!(r#"{{"id": "ch_{n}"}}"#))
}

/// An inventory service on a free port: one line in, one line out: `RESERVE …` → `OK r-<n>`,
/// `RELEASE …` → `OK`.
pub struct Inventory {
    pub addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Inventory {
    pub async fn start() -> Inventory {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = lines.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut line = String::new();
                    if BufReader::new(read).read_line(&mut line).await.is_err() {
                        return;
                    }
                    let line = line.trim_end().to_string();
                    let answer = {
                        let mut seen = seen.lock().expect("lock");
                        seen.push(line.clone());
                        match line.split_whitespace().next() {
                            Some("RESERVE") => format!("OK r-{}\n", seen.len()),
                            Some("RELEASE") => "OK\n".to_string(),
                            _ => "ERR unknown command\n".to_string(),
                        }
                    };
                    let _ = write.write_all(answer.as_bytes()).await;
                });
            }
        });
        Inventory { addr, lines }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lock").clone()
    }
}
