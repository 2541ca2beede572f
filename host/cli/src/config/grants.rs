//! `allow_http`, `allow_tcp`, `dirs`, `secrets` and `http_timeout` of an instance: read once
//! when the config loads, so a typo, a missing directory or an unset secret stops the start
//! instead of failing a step later.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use reprise_host::grants::{DirGrant, GrantError, Grants, HostPattern, Secrets};

use super::InstanceConfig;

/// `dirs = { "/data" = { path = "./data", read_only = true } }`: one directory for steps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirConfig {
    /// The directory on the host, relative to the config file.
    pub path: String,
    /// Refuse writes.
    #[serde(default)]
    pub read_only: bool,
}

/// `secrets = { KEY = { env = "VAR" } }` or `{ file = "path" }`: where a secret's value is.
/// Values never sit in the config file itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the host.
    pub env: Option<String>,
    /// A file, relative to the config file; one trailing newline is dropped.
    pub file: Option<String>,
}

impl SecretSource {
    /// The secret's value.
    pub fn read(&self, name: &str, base: &Path) -> Result<String, String> {
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map_err(|_| format!("secret {name:?} reads ${var}, which is not set")),
            (None, Some(file)) => {
                let path = base.join(file);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("secret {name:?} reads {}: {e}", path.display()))?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
            }
            _ => Err(format!(
                "secret {name:?} needs exactly one of env = \"VAR\" or file = \"path\""
            )),
        }
    }
}

/// Host patterns from their text, naming the key of a bad one.
pub fn host_patterns(key: &str, texts: &[String]) -> Result<Vec<HostPattern>, String> {
    patterns(key, texts, str::parse)
}

/// `allow_tcp`'s patterns (or `--allow-tcp`'s): no wildcard names, which a connection's
/// address could never match.
pub fn tcp_patterns(key: &str, texts: &[String]) -> Result<Vec<HostPattern>, String> {
    patterns(key, texts, HostPattern::for_tcp)
}

fn patterns(
    key: &str,
    texts: &[String],
    parse: impl Fn(&str) -> Result<HostPattern, GrantError>,
) -> Result<Vec<HostPattern>, String> {
    texts
        .iter()
        .map(|t| parse(t).map_err(|e| format!("{key}: {e}")))
        .collect()
}

/// A directory grant whose host directory exists.
pub fn existing_dir(grant: DirGrant) -> Result<DirGrant, String> {
    if grant.host_path.is_dir() {
        Ok(grant)
    } else {
        Err(format!(
            "dirs: {} (granted at {}) is not a directory",
            grant.host_path.display(),
            grant.guest_path
        ))
    }
}

impl InstanceConfig {
    /// The grants this instance's keys describe, read and checked; paths are relative to
    /// `base`, the config file's directory.
    pub(super) fn read_grants(&self, base: &Path) -> Result<Arc<Grants>, String> {
        let mut dirs = Vec::new();
        for (guest_path, dir) in &self.dirs {
            let host_path = base.join(&dir.path);
            let grant = DirGrant::new(&host_path.to_string_lossy(), guest_path, dir.read_only)
                .map_err(|e| format!("dirs: {e}"))?;
            dirs.push(existing_dir(grant)?);
        }
        let secrets = self
            .secrets
            .iter()
            .map(|(name, source)| Ok((name.clone(), source.read(name, base)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        Ok(Arc::new(Grants {
            http: host_patterns("allow_http", &self.allow_http)?,
            tcp: tcp_patterns("allow_tcp", &self.allow_tcp)?,
            dirs,
            secrets: Secrets::new(secrets),
            http_timeout: self.http_timeout.unwrap_or(Grants::DEFAULT_HTTP_TIMEOUT),
        }))
    }
}
