//! A client for a running `reprise serve`: start or enqueue workflows and await their results
//! from another process, over the admin HTTP API (DBOS's `DBOSClient`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), reprise_client::ClientError> {
//! let client = reprise_client::Client::new("http://127.0.0.1:8080", Some("token".into()))?;
//! let handle = client.enqueue("fib", "fib", &20).await?;
//! let output: u64 = handle.result().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// What can go wrong talking to the server or with the workflow.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL {0:?}")]
    Url(String),
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// The server refused the request (4xx/5xx) with this message.
    #[error("server answered {status}: {message}")]
    Api { status: u16, message: String },
    /// The workflow ended without an output.
    #[error("workflow {id} ended {status}: {message}")]
    Workflow {
        id: String,
        status: String,
        message: String,
    },
    /// The output did not decode into the requested type.
    #[error("workflow {id} output does not decode: {message}")]
    Decode { id: String, message: String },
}

/// A workflow's status as the server reports it (the fields a client needs; the server sends
/// more).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct WorkflowStatus {
    pub id: String,
    pub name: String,
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub queue_name: Option<String>,
    pub executions: u32,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
}

impl WorkflowStatus {
    /// Whether the workflow has ended.
    pub fn is_terminal(&self) -> bool {
        !matches!(self.status.as_str(), "ENQUEUED" | "PENDING")
    }
}

/// Options of a start or enqueue beyond the workflow and its input.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StartOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    pub priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deduplication_id: Option<String>,
}

/// A connection to one `reprise serve`.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

#[derive(Serialize)]
struct StartBody<'a, I: Serialize + ?Sized> {
    workflow: &'a str,
    input: &'a I,
    #[serde(flatten)]
    options: &'a StartOptions,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str, token: Option<String>) -> Result<Client, ClientError> {
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::Url(base_url.to_string()));
        }
        Ok(Client {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()?,
            base: base_url.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<(u16, T), ClientError> {
        let response = builder.send().await?;
        let status = response.status().as_u16();
        if status >= 400 {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(text);
            return Err(ClientError::Api { status, message });
        }
        Ok((status, response.json().await?))
    }

    /// Starts (or, with `options.queue`, enqueues) a workflow and returns its handle.
    pub async fn start_with<I: Serialize + ?Sized>(
        &self,
        workflow: &str,
        input: &I,
        options: &StartOptions,
    ) -> Result<WorkflowHandle, ClientError> {
        let body = StartBody {
            workflow,
            input,
            options,
        };
        let (_, status): (u16, WorkflowStatus) = self
            .send(
                self.request(reqwest::Method::POST, "/workflows")
                    .json(&body),
            )
            .await?;
        Ok(WorkflowHandle {
            client: self.clone(),
            id: status.id,
        })
    }

    /// Enqueues a workflow on a queue.
    pub async fn enqueue<I: Serialize + ?Sized>(
        &self,
        queue: &str,
        workflow: &str,
        input: &I,
    ) -> Result<WorkflowHandle, ClientError> {
        let options = StartOptions {
            queue: Some(queue.to_string()),
            ..StartOptions::default()
        };
        self.start_with(workflow, input, &options).await
    }

    /// A handle to a workflow started elsewhere.
    pub fn handle(&self, id: impl Into<String>) -> WorkflowHandle {
        WorkflowHandle {
            client: self.clone(),
            id: id.into(),
        }
    }

    /// The workflow's current status.
    pub async fn status(&self, id: &str) -> Result<WorkflowStatus, ClientError> {
        Ok(self
            .send(self.request(reqwest::Method::GET, &format!("/workflows/{id}")))
            .await?
            .1)
    }

    /// Cancels a workflow.
    pub async fn cancel(&self, id: &str) -> Result<WorkflowStatus, ClientError> {
        Ok(self
            .send(self.request(reqwest::Method::POST, &format!("/workflows/{id}/cancel")))
            .await?
            .1)
    }

    /// Resumes a cancelled or failed workflow from its last checkpoint.
    pub async fn resume(&self, id: &str) -> Result<WorkflowStatus, ClientError> {
        Ok(self
            .send(self.request(reqwest::Method::POST, &format!("/workflows/{id}/resume")))
            .await?
            .1)
    }

    /// Starts a copy of a workflow that replays its steps before `from_step`.
    pub async fn fork(
        &self,
        id: &str,
        from_step: u32,
        new_id: Option<&str>,
    ) -> Result<WorkflowHandle, ClientError> {
        let body = serde_json::json!({ "from_step": from_step, "id": new_id });
        let (_, status): (u16, WorkflowStatus) = self
            .send(
                self.request(reqwest::Method::POST, &format!("/workflows/{id}/fork"))
                    .json(&body),
            )
            .await?;
        Ok(self.handle(status.id))
    }

    /// Waits until the workflow ends and returns its final status.
    pub async fn wait(&self, id: &str) -> Result<WorkflowStatus, ClientError> {
        loop {
            let request = self
                .request(
                    reqwest::Method::GET,
                    &format!("/workflows/{id}/result?timeout_ms=30000"),
                )
                .timeout(Duration::from_secs(45));
            let (code, status): (u16, WorkflowStatus) = self.send(request).await?;
            if code == 200 && status.is_terminal() {
                return Ok(status);
            }
        }
    }
}

/// A started workflow (DBOS's `WorkflowHandle`).
#[derive(Debug, Clone)]
pub struct WorkflowHandle {
    client: Client,
    id: String,
}

impl WorkflowHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the workflow's output, decoded into `T`; an error if it ended otherwise.
    pub async fn result<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let status = self.client.wait(&self.id).await?;
        if status.status != "SUCCESS" {
            return Err(ClientError::Workflow {
                id: status.id,
                message: status.error.unwrap_or_default(),
                status: status.status,
            });
        }
        serde_json::from_str(status.output.as_deref().unwrap_or("null")).map_err(|e| {
            ClientError::Decode {
                id: self.id.clone(),
                message: e.to_string(),
            }
        })
    }

    /// Waits for the workflow to end and returns its final status, whatever it is.
    pub async fn status_at_end(&self) -> Result<WorkflowStatus, ClientError> {
        self.client.wait(&self.id).await
    }
}
