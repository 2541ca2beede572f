//! Where a running `reprise serve` is, for the commands that talk to one (`enqueue`,
//! `schedule`): given by flag or environment, or read from the server's own `reprise.toml`.

use std::path::PathBuf;

use clap::Args;
use reprise_client::Client;

use crate::config::Config;

/// The server's address and token.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server.
    #[arg(long, env = "REPRISE_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Bearer token.
    #[arg(long, env = "REPRISE_TOKEN")]
    token: Option<String>,
    /// The server's `reprise.toml`: its `[server]` listen address and token, instead of
    /// `--server` and `--token`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ServerArgs {
    /// A client of the server.
    pub fn client(&self) -> anyhow::Result<Client> {
        let Some(path) = &self.config else {
            return Ok(Client::new(&self.server, self.token.clone())?);
        };
        let config = Config::load(path)?;
        let token = config.token().map_err(anyhow::Error::msg)?;
        Ok(Client::new(&url(&config.server.listen), token)?)
    }
}

/// The URL a server listening on `listen` is reached at from this machine: a wildcard address
/// is reached on loopback.
fn url(listen: &str) -> String {
    let local = match listen.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    };
    format!("http://{local}")
}

#[cfg(test)]
mod tests {
    use super::url;

    #[test]
    fn a_wildcard_listen_address_is_reached_on_loopback() {
        assert_eq!(url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("0.0.0.0:9000"), "http://127.0.0.1:9000");
        assert_eq!(url("[::]:9000"), "http://[::1]:9000");
        assert_eq!(url("reprise.internal:80"), "http://reprise.internal:80");
    }
}
