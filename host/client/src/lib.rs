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

mod retry;
mod schedules;
mod waits;

/// The wire types and the id rule live in `reprise-protocol`, shared with the server.
pub use reprise_protocol::{ids, wire};

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use ids::InvalidId;
use ids::{new_workflow_id, validate_workflow_id};
pub use retry::RetryPolicy;
use retry::{Backoff, is_transient};
use wire::{ErrorBody, ForkBody, StartBody};
pub use wire::{WorkflowStatus, WorkflowView};

/// What can go wrong talking to the server or with the workflow.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server URL {0:?}")]
    Url(String),
    /// A workflow id breaks the id rule; nothing was sent.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// The request did not get an answer; the cause says why.
    #[error("cannot reach the server")]
    Http(#[from] reqwest::Error),
    /// The input could not be written as JSON.
    #[error("input does not encode as JSON")]
    Input(#[source] serde_json::Error),
    /// The server answered with something that is not the expected JSON.
    #[error("the server's answer does not decode")]
    Answer(#[source] serde_json::Error),
    /// The server refused the request (4xx/5xx) with this message.
    #[error("server answered {status}: {message}")]
    Api { status: u16, message: String },
    /// A start named no instance and several define the workflow: set
    /// [`StartOptions::instance`] to one of `instances`.
    #[error("{message}")]
    InstanceRequired {
        message: String,
        instances: Vec<String>,
    },
    /// The workflow ended without an output.
    #[error("workflow {id} ended {status}: {message}")]
    Workflow {
        id: String,
        status: WorkflowStatus,
        message: String,
    },
    /// The output did not decode into the requested type.
    #[error("workflow {id} output does not decode: {message}")]
    Decode { id: String, message: String },
}

/// Options of a start or enqueue beyond the workflow and its input.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The workflow id; an existing one is joined, not started again. Without one, the client
    /// makes one up for the start (once, so its retries join rather than duplicate).
    pub id: Option<String>,
    pub instance: Option<String>,
    pub queue: Option<String>,
    pub priority: i32,
    pub deduplication_id: Option<String>,
    /// Its partition of a partitioned queue: the queue's limits hold per partition.
    pub partition_key: Option<String>,
    /// A time limit from its first execution's start: past it, it ends CANCELLED.
    pub timeout: Option<Duration>,
    /// Start no sooner than this long from now (it stays ENQUEUED until then).
    pub delay: Option<Duration>,
}

/// A connection to one `reprise serve`. Every workflow id is checked against
/// [`ids::validate_workflow_id`] before anything is sent: ids become URL paths, and an id like
/// `a/steps` would otherwise ask a different endpoint.
///
/// Starts, status reads and cancels that fail on the way are retried per the
/// [`RetryPolicy`]; waits for a result reconnect until the workflow ends; resumes and forks
/// are sent once.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    retry: RetryPolicy,
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
                // The server closes a connection idle for its header_timeout (10 s unless
                // configured); letting go sooner avoids sending on one it is closing.
                .pool_idle_timeout(Duration::from_secs(5))
                .build()?,
            base: base_url.trim_end_matches('/').to_string(),
            token,
            retry: RetryPolicy::default(),
        })
    }

    /// This client with another retry policy.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Client {
        self.retry = policy;
        self
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        // The server takes a change of state only as JSON (or with a token), so a web page
        // cannot make one with a "simple" cross-site request; body-less changes say JSON too.
        let changes = method != reqwest::Method::GET;
        let mut builder = self.http.request(method, format!("{}{path}", self.base));
        if changes {
            builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends a request and decodes the answer; an error answer becomes [`ClientError::Api`]
    /// (or [`ClientError::InstanceRequired`]).
    async fn send<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<(u16, T), ClientError> {
        let response = builder.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if status >= 400 {
            return Err(match serde_json::from_str::<ErrorBody>(&text) {
                Ok(body) if !body.choose_instance.is_empty() => ClientError::InstanceRequired {
                    message: body.error,
                    instances: body.choose_instance,
                },
                Ok(body) => ClientError::Api {
                    status,
                    message: body.error,
                },
                Err(_) => ClientError::Api {
                    status,
                    message: text,
                },
            });
        }
        let value = serde_json::from_str(&text).map_err(ClientError::Answer)?;
        Ok((status, value))
    }

    /// [`Client::send`] for a request that is safe to repeat, built afresh by `build` for
    /// each try: a failure on the way is retried per the policy, and the last one returned.
    async fn send_retrying<T: DeserializeOwned>(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, T), ClientError> {
        let mut backoff = Backoff::new(&self.retry);
        let mut tries = 1;
        loop {
            let request = build().timeout(self.retry.request_timeout);
            match self.send(request).await {
                Err(err) if tries < self.retry.attempts && is_transient(&err) => {
                    tries += 1;
                    backoff.wait().await;
                }
                done => return done,
            }
        }
    }

    /// Starts (or, with `options.queue`, enqueues) a workflow and returns its handle.
    ///
    /// The start always names its workflow id: `options.id`, or one made up here, once. So
    /// when the server stored the workflow but its answer was lost, the retry joins that
    /// workflow instead of starting a second.
    pub async fn start_with<I: Serialize + ?Sized>(
        &self,
        workflow: &str,
        input: &I,
        options: &StartOptions,
    ) -> Result<WorkflowHandle, ClientError> {
        let id = match &options.id {
            Some(id) => {
                validate_workflow_id(id)?;
                id.clone()
            }
            None => new_workflow_id(),
        };
        let body = StartBody {
            workflow: workflow.to_string(),
            input: serde_json::to_value(input).map_err(ClientError::Input)?,
            instance: options.instance.clone(),
            id: Some(id),
            queue: options.queue.clone(),
            priority: options.priority,
            deduplication_id: options.deduplication_id.clone(),
            partition_key: options.partition_key.clone(),
            timeout_ms: options.timeout.map(millis),
            delay_ms: options.delay.map(millis),
            start_at: None,
        };
        let (_, started): (u16, WorkflowView) = self
            .send_retrying(|| {
                self.request(reqwest::Method::POST, "/workflows")
                    .json(&body)
            })
            .await?;
        Ok(self.handle(started.id))
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

    /// The workflow as it is now.
    pub async fn status(&self, id: &str) -> Result<WorkflowView, ClientError> {
        validate_workflow_id(id)?;
        let path = format!("/workflows/{id}");
        Ok(self
            .send_retrying(|| self.request(reqwest::Method::GET, &path))
            .await?
            .1)
    }

    /// Cancels a workflow (retried: cancelling twice leaves it as once).
    pub async fn cancel(&self, id: &str) -> Result<WorkflowView, ClientError> {
        validate_workflow_id(id)?;
        let path = format!("/workflows/{id}/cancel");
        Ok(self
            .send_retrying(|| self.request(reqwest::Method::POST, &path))
            .await?
            .1)
    }

    /// Resumes a cancelled or failed workflow from its last checkpoint. Sent once: a repeat
    /// after a lost answer would be refused as not resumable.
    pub async fn resume(&self, id: &str) -> Result<WorkflowView, ClientError> {
        validate_workflow_id(id)?;
        Ok(self
            .send(self.request(reqwest::Method::POST, &format!("/workflows/{id}/resume")))
            .await?
            .1)
    }

    /// Starts a copy of a workflow that replays its steps before `from_step`. Sent once.
    pub async fn fork(
        &self,
        id: &str,
        from_step: u32,
        new_id: Option<&str>,
    ) -> Result<WorkflowHandle, ClientError> {
        validate_workflow_id(id)?;
        if let Some(new_id) = new_id {
            validate_workflow_id(new_id)?;
        }
        let body = ForkBody {
            from_step,
            id: new_id.map(str::to_string),
            to: None,
        };
        let (_, forked): (u16, WorkflowView) = self
            .send(
                self.request(reqwest::Method::POST, &format!("/workflows/{id}/fork"))
                    .json(&body),
            )
            .await?;
        Ok(self.handle(forked.id))
    }

    /// Waits until the workflow ends and returns it as it ended. The workflow is durable, so
    /// the wait is too: when the connection drops, times out or the server is unavailable
    /// (restarting, say) it reconnects, at most [`RetryPolicy::max_backoff`] apart, for as
    /// long as it takes; bound it with a timeout of your own. Refusals (an unknown id, a
    /// wrong token) end it.
    pub async fn wait(&self, id: &str) -> Result<WorkflowView, ClientError> {
        validate_workflow_id(id)?;
        let path = format!("/workflows/{id}/result?timeout_ms=30000");
        let mut backoff = Backoff::new(&self.retry);
        loop {
            let request = self
                .request(reqwest::Method::GET, &path)
                .timeout(Duration::from_secs(45));
            match self.send::<WorkflowView>(request).await {
                Ok((200, workflow)) if workflow.status.is_terminal() => return Ok(workflow),
                Ok(_) => backoff.reset(),
                Err(err) if is_transient(&err) => backoff.wait().await,
                Err(err) => return Err(err),
            }
        }
    }
}

/// Whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A started workflow (DBOS's `WorkflowHandle`).
#[derive(Debug, Clone)]
pub struct WorkflowHandle {
    client: Client,
    id: String,
}

impl WorkflowHandle {
    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the workflow's output, decoded into `T`; an error if it ended otherwise.
    pub async fn result<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let workflow = self.client.wait(&self.id).await?;
        if workflow.status != WorkflowStatus::Success {
            return Err(ClientError::Workflow {
                id: workflow.id,
                message: workflow.error.unwrap_or_default(),
                status: workflow.status,
            });
        }
        let output = workflow.output.unwrap_or(serde_json::Value::Null);
        serde_json::from_value(output).map_err(|e| ClientError::Decode {
            id: self.id.clone(),
            message: e.to_string(),
        })
    }

    /// Waits for the workflow to end and returns it as it ended, whatever its status.
    pub async fn status_at_end(&self) -> Result<WorkflowView, ClientError> {
        self.client.wait(&self.id).await
    }
}
