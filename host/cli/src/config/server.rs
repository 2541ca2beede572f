//! `[server]`: where `reprise serve` listens, who may talk to it, and how long a request may
//! take.

use std::time::Duration;

use serde::Deserialize;

use super::units::{duration, size};

/// The admin HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    /// The address the admin API listens on.
    pub listen: String,
    /// Bearer token every endpoint but `/healthz` requires. `token_env` names an environment
    /// variable holding it instead, to keep secrets out of the file.
    pub token: Option<String>,
    /// An environment variable holding the token, instead of `token`.
    pub token_env: Option<String>,
    /// Serve without a token: anyone who can reach the port may do anything. Allowed only on
    /// a loopback address, and logged as a warning at start.
    #[serde(default)]
    pub unauthenticated: bool,
    /// Host names (as clients write them in `Host`) the server answers to besides its listen
    /// address and, on loopback, `localhost`. Others get 421, so a web page that points a name
    /// of its own at the server (DNS rebinding) reaches nothing. Empty on a wildcard address
    /// (`0.0.0.0`): any name.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// How long SIGINT/SIGTERM waits for running workflows before exiting.
    #[serde(default = "default_grace", deserialize_with = "duration")]
    pub grace_period: Duration,
    /// Largest request body accepted.
    #[serde(default = "default_max_body", deserialize_with = "size")]
    pub max_body: u64,
    /// How long a connection may take to send a whole request head, counted from when the
    /// server starts waiting for it: a client trickling header bytes (or idling on a kept-alive
    /// connection) cannot hold a connection open forever.
    #[serde(default = "default_header_timeout", deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// How long a request may take to send its whole body before it is answered 408.
    #[serde(default = "default_body_timeout", deserialize_with = "duration")]
    pub body_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            token: None,
            token_env: None,
            unauthenticated: false,
            allowed_hosts: Vec::new(),
            grace_period: default_grace(),
            max_body: default_max_body(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

fn default_grace() -> Duration {
    Duration::from_secs(30)
}

fn default_max_body() -> u64 {
    1 << 20
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}
