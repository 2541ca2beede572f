//! What a configured instance may reach from its steps: hosts for HTTP and TCP, directories
//! and secrets. Pure parsing and matching, so the config, the CLI and the sandbox share one
//! reading of a grant, and one wording of a refusal.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The message of every I/O attempt made from workflow code: workflow code is replayed, so
/// what it reads must come from recorded steps.
pub const IO_OUTSIDE_STEP: &str =
    "I/O is only allowed inside a step: move this call into a #[step] function";

/// Everything an instance's steps may reach. The default reaches nothing.
#[derive(Debug, Clone)]
pub struct Grants {
    /// Hosts outgoing HTTP requests may go to.
    pub http: Vec<HostPattern>,
    /// Hosts TCP connections may go to.
    pub tcp: Vec<HostPattern>,
    /// Directories preopened for steps.
    pub dirs: Vec<DirGrant>,
    /// Values steps read by name.
    pub secrets: Secrets,
    /// Connect, first-byte and between-bytes timeout of an HTTP request that sets none.
    pub http_timeout: Duration,
}

impl Grants {
    /// The HTTP timeout when none is configured.
    pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

    /// Whether a step may look `name` up: an address needs no query; a name must be one a
    /// TCP or HTTP grant names, so no lookup carries anything to a domain nobody granted.
    pub fn may_resolve(&self, name: &str) -> bool {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok() || self.tcp.iter().chain(&self.http).any(|p| p.names(name))
    }
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            http: Vec::new(),
            tcp: Vec::new(),
            dirs: Vec::new(),
            secrets: Secrets::default(),
            http_timeout: Self::DEFAULT_HTTP_TIMEOUT,
        }
    }
}

/// A grant that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrantError(String);

/// `host`, `host:port` or `host:*`; a host of `*.example.com` matches its subdomains and
/// `*` any host. Without a port, any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

impl HostPattern {
    /// Whether a connection to `host` (a name or an address) on `port` is granted.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        self.port.is_none_or(|p| p == port) && self.names(host)
    }

    /// Whether `host` (a name or an address) is the host this pattern names, on any port.
    pub fn names(&self, host: &str) -> bool {
        // `example.com.` is the fully qualified spelling of `example.com`.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.');
        if self.host == "*" {
            return true;
        }
        match self.host.strip_prefix("*.") {
            // `a.example.com` for `*.example.com`: a label, a dot, then the domain.
            Some(domain) => {
                let Some(split) = host.len().checked_sub(domain.len() + 1) else {
                    return false;
                };
                split > 0
                    && host.is_char_boundary(split)
                    && host[split..].starts_with('.')
                    && host[split + 1..].eq_ignore_ascii_case(domain)
            }
            None => host.eq_ignore_ascii_case(&self.host),
        }
    }

    /// A pattern for `allow_tcp`: a connection is checked by the address it goes to, which a
    /// wildcard name (`*.example.com`) cannot be matched against, so one is refused here
    /// rather than accepted and never matched. `*` (any host) stays allowed.
    pub fn for_tcp(text: &str) -> Result<Self, GrantError> {
        let pattern: HostPattern = text.parse()?;
        if pattern.host.starts_with("*.") {
            return Err(GrantError(format!(
                "{text:?} cannot be a TCP grant: a connection is checked by the address it \
                 goes to, which a wildcard name cannot match; name the host ({}:{}) or grant `*`",
                &pattern.host[2..],
                pattern.port.map_or("*".to_string(), |p| p.to_string())
            )));
        }
        Ok(pattern)
    }

    /// The host as an address, when the pattern names one rather than a name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The host part as written (lowercase, without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, or `None` for any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

/// Lowercase and without the brackets of an IPv6 literal, as patterns keep hosts.
fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

impl FromStr for HostPattern {
    type Err = GrantError;

    fn from_str(text: &str) -> Result<Self, GrantError> {
        let bad = |why: &str| {
            GrantError(format!(
                "{text:?} is not a host grant ({why}); write host, host:port or host:*"
            ))
        };
        let text = text.trim();
        // `[::1]:80`, `[::1]`, `::1` (an IPv6 address without brackets has no port).
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                ),
            }
        } else if text.matches(':').count() > 1 {
            (text, None)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            return Err(bad("no host name"));
        }
        let port = match port {
            None | Some("*") => None,
            Some(port) => Some(port.parse::<u16>().map_err(|_| bad("bad port"))?),
        };
        Ok(HostPattern {
            host: normalize_host(host),
            port,
        })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => write!(f, "{host}:*"),
        }
    }
}

/// A host directory steps see at `guest_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host_path: PathBuf,
    /// Where the guest finds it, e.g. `/data`.
    pub guest_path: String,
    /// Whether writes are refused.
    pub read_only: bool,
}

impl FromStr for DirGrant {
    type Err = GrantError;

    /// `HOST_PATH:GUEST_PATH[:ro]`, as `--dir` takes it.
    fn from_str(text: &str) -> Result<Self, GrantError> {
        let (rest, read_only) = match text.strip_suffix(":ro") {
            Some(rest) => (rest, true),
            None => (text.strip_suffix(":rw").unwrap_or(text), false),
        };
        let (host, guest) = rest.rsplit_once(':').ok_or_else(|| {
            GrantError(format!(
                "{text:?} is not a directory grant; write HOST_PATH:GUEST_PATH[:ro]"
            ))
        })?;
        DirGrant::new(host, guest, read_only)
    }
}

impl DirGrant {
    /// A grant of `host_path` at `guest_path`, which must be absolute.
    pub fn new(host_path: &str, guest_path: &str, read_only: bool) -> Result<Self, GrantError> {
        if !guest_path.starts_with('/') || host_path.is_empty() {
            return Err(GrantError(format!(
                "directory grant {host_path:?} → {guest_path:?}: the guest path must be absolute \
                 (like /data) and the host path not empty"
            )));
        }
        Ok(DirGrant {
            host_path: PathBuf::from(host_path),
            guest_path: guest_path.to_string(),
            read_only,
        })
    }
}

/// Secret values by name. Never printed: `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, String>);

impl Secrets {
    /// Secrets from `(name, value)` pairs.
    pub fn new(values: impl IntoIterator<Item = (String, String)>) -> Self {
        Secrets(values.into_iter().collect())
    }

    /// The names of the granted secrets, never their values.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The value of a granted secret.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether no secret is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Why an instance may not make a connection, in words that say how to grant it.
pub fn not_granted(kind: Kind, instance: &str, host: &str, port: u16) -> String {
    let target = HostPattern {
        host: normalize_host(host),
        port: Some(port),
    };
    let (key, flag) = match kind {
        Kind::Http => ("allow_http", "--allow-http"),
        Kind::Tcp => ("allow_tcp", "--allow-tcp"),
    };
    format!(
        "{} to {target} is not granted to instance {instance:?}: add \"{target}\" to {key} \
         (or {flag} {target})",
        kind.noun()
    )
}

/// Why a step may not look a name up.
pub fn lookup_not_granted(instance: &str, name: &str) -> String {
    format!(
        "looking up {name:?} is not granted to instance {instance:?}: a step may look up only \
         the names its allow_tcp and allow_http grants name"
    )
}

/// Why a secret cannot be read.
pub fn secret_not_granted(instance: &str, name: &str) -> String {
    format!(
        "secret {name:?} is not granted to instance {instance:?}: add it to secrets (or --secret \
         {name})"
    )
}

/// Which allow-list a connection is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `allow_http`.
    Http,
    /// `allow_tcp`.
    Tcp,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Http => "HTTP",
            Kind::Tcp => "a TCP connection",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> HostPattern {
        text.parse().expect(text)
    }

    #[test]
    fn host_patterns_match_hosts_and_ports() {
        assert!(pattern("api.example.com:443").matches("API.example.com", 443));
        assert!(!pattern("api.example.com:443").matches("api.example.com", 80));
        assert!(pattern("api.example.com").matches("api.example.com", 8080));
        assert!(pattern("127.0.0.1:*").matches("127.0.0.1", 5432));
        assert!(!pattern("127.0.0.1:*").matches("127.0.0.2", 5432));
        assert!(pattern("*.example.com:443").matches("a.b.example.com", 443));
        assert!(!pattern("*.example.com:443").matches("example.com", 443));
        assert!(!pattern("*.example.com:443").matches("badexample.com", 443));
        assert!(pattern("[::1]:80").matches("[::1]", 80));
        assert!(pattern("::1").matches("::1", 9));
        assert!(pattern("*").matches("anything", 1));
    }

    #[test]
    fn a_trailing_dot_names_the_same_host() {
        assert!(pattern("api.example.com:443").matches("api.example.com.", 443));
        assert!(pattern("api.example.com.:443").matches("api.example.com", 443));
        assert!(pattern("*.example.com").matches("a.example.com.", 1));
    }

    #[test]
    fn tcp_grants_refuse_wildcard_names_they_could_never_match() {
        let err = HostPattern::for_tcp("*.example.com:5432").expect_err("wildcard");
        assert!(err.to_string().contains("example.com:5432"), "{err}");
        assert!(HostPattern::for_tcp("*:5432").is_ok());
        assert!(HostPattern::for_tcp("db.internal:5432").is_ok());
        assert!(HostPattern::for_tcp("127.0.0.1:*").is_ok());
    }

    #[test]
    fn bad_host_patterns_say_what_to_write() {
        for bad in ["", ":80", "host:http", "[::1", "http://x", "host:99999"] {
            let err = bad.parse::<HostPattern>().expect_err(bad);
            assert!(err.to_string().contains("host:port"), "{err}");
        }
    }

    #[test]
    fn patterns_print_as_written() {
        assert_eq!(pattern("Example.com:443").to_string(), "example.com:443");
        assert_eq!(pattern("127.0.0.1").to_string(), "127.0.0.1:*");
        assert_eq!(pattern("[::1]:80").to_string(), "[::1]:80");
    }

    #[test]
    fn dir_grants_read_the_flag_form() {
        let ro: DirGrant = "./data:/data:ro".parse().unwrap();
        assert_eq!(ro.host_path, PathBuf::from("./data"));
        assert_eq!(ro.guest_path, "/data");
        assert!(ro.read_only);
        let rw: DirGrant = "/tmp/x:/scratch".parse().unwrap();
        assert!(!rw.read_only);
        assert!("/tmp/x".parse::<DirGrant>().is_err());
        assert!("/tmp/x:relative".parse::<DirGrant>().is_err());
    }

    #[test]
    fn secrets_never_print_their_values() {
        let secrets = Secrets::new([("KEY".to_string(), "hunter2".to_string())]);
        assert_eq!(format!("{secrets:?}"), "{\"KEY\"}");
        assert_eq!(secrets.get("KEY"), Some("hunter2"));
    }

    #[test]
    fn refusals_name_the_key_that_grants() {
        let m = not_granted(Kind::Http, "shop", "api.example.com", 443);
        assert_eq!(
            m,
            "HTTP to api.example.com:443 is not granted to instance \"shop\": add \
             \"api.example.com:443\" to allow_http (or --allow-http api.example.com:443)"
        );
        assert!(secret_not_granted("shop", "K").contains("--secret K"));
    }
}
