//! `--allow-http`, `--allow-tcp`, `--dir`, `--secret`, `--http-timeout`: what the steps of
//! workflows run by this command may reach. Nothing given, nothing reachable.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use crate::config::{existing_dir, host_patterns, parse_duration, tcp_patterns};
use reprise_host::grants::{DirGrant, Grants, Secrets};

/// What steps may reach.
#[derive(Debug, Clone, Args)]
pub struct GrantArgs {
    /// Let steps send HTTP requests to HOST[:PORT] (`*` for any port; repeatable).
    #[arg(long = "allow-http", value_name = "HOST[:PORT]")]
    allow_http: Vec<String>,
    /// Let steps open TCP connections to HOST:PORT (repeatable).
    #[arg(long = "allow-tcp", value_name = "HOST:PORT")]
    allow_tcp: Vec<String>,
    /// Show a host directory to steps at GUEST_PATH, read-only with `:ro` (repeatable).
    #[arg(long = "dir", value_name = "HOST_PATH:GUEST_PATH[:ro]", value_parser = parse_dir)]
    dirs: Vec<DirGrant>,
    /// Let steps read the secret NAME, its value taken from the host's environment variable
    /// of that name (repeatable). Never stored or logged.
    #[arg(long = "secret", value_name = "NAME")]
    secrets: Vec<String>,
    /// Timeout of each phase of an HTTP request that sets none (connect, first byte, between
    /// bytes).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    http_timeout: Duration,
}

fn parse_dir(text: &str) -> Result<DirGrant, String> {
    text.parse::<DirGrant>()
        .map_err(|e| e.to_string())
        .and_then(existing_dir)
}

impl GrantArgs {
    /// Whether any grant was given on the command line.
    pub fn any(&self) -> bool {
        !(self.allow_http.is_empty()
            && self.allow_tcp.is_empty()
            && self.dirs.is_empty()
            && self.secrets.is_empty())
    }

    /// The grants, with each secret read from the environment.
    pub fn grants(&self) -> anyhow::Result<Arc<Grants>> {
        let secrets = self
            .secrets
            .iter()
            .map(|name| {
                std::env::var(name)
                    .map(|value| (name.clone(), value))
                    .with_context(|| {
                        format!("--secret {name}: the environment variable {name} is not set")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Arc::new(Grants {
            http: host_patterns("--allow-http", &self.allow_http).map_err(anyhow::Error::msg)?,
            tcp: tcp_patterns("--allow-tcp", &self.allow_tcp).map_err(anyhow::Error::msg)?,
            dirs: self.dirs.clone(),
            secrets: Secrets::new(secrets),
            http_timeout: self.http_timeout,
        }))
    }
}
