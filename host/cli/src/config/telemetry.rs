//! `[telemetry]`: where traces go. Off unless an OTLP endpoint is configured here or in the
//! standard `OTEL_EXPORTER_OTLP_*` environment variables; the file wins over the environment,
//! as an explicit setting should.

use serde::Deserialize;

use reprise_host::telemetry::OtlpTarget;

/// The standard variable naming the collector's base URL (`/v1/traces` is appended).
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable naming the traces URL itself, used as it is.
pub const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The standard switch that turns the SDK off whatever else is set.
pub const DISABLED_VAR: &str = "OTEL_SDK_DISABLED";
/// The standard variable naming the service, when the file names none.
pub const SERVICE_NAME_VAR: &str = "OTEL_SERVICE_NAME";
/// The service name when neither the file nor `OTEL_SERVICE_NAME` gives one.
pub const DEFAULT_SERVICE_NAME: &str = "reprise";

/// `[telemetry]` in `reprise.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector's base URL, e.g. `http://localhost:4318`; traces go to
    /// `<endpoint>/v1/traces` as protobuf.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans [default: `$OTEL_SERVICE_NAME`, else `reprise`].
    pub service_name: Option<String>,
}

impl TelemetryConfig {
    /// Why the file's settings are wrong, if they are: read at load, so a typo in the
    /// endpoint stops the server at startup instead of losing every span silently.
    pub fn check(&self) -> Result<(), String> {
        if let Some(endpoint) = &self.otlp_endpoint {
            traces_url(endpoint, true).map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?;
        }
        if self
            .service_name
            .as_deref()
            .is_some_and(|s| s.trim().is_empty())
        {
            return Err("telemetry.service_name must not be empty".into());
        }
        Ok(())
    }

    /// Where traces go with these settings and the process's environment; `None` is off.
    pub fn target(&self) -> Result<Option<OtlpTarget>, String> {
        self.target_with(|name| std::env::var(name).ok())
    }

    /// [`TelemetryConfig::target`] reading variables through `var`, for tests.
    pub fn target_with(
        &self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OtlpTarget>, String> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if var(DISABLED_VAR).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let traces_url = if let Some(endpoint) = &self.otlp_endpoint {
            traces_url(endpoint, true).map_err(|e| format!("telemetry.otlp_endpoint: {e}"))?
        } else if let Some(url) = var(TRACES_ENDPOINT_VAR) {
            traces_url(&url, false).map_err(|e| format!("${TRACES_ENDPOINT_VAR}: {e}"))?
        } else if let Some(endpoint) = var(ENDPOINT_VAR) {
            traces_url(&endpoint, true).map_err(|e| format!("${ENDPOINT_VAR}: {e}"))?
        } else {
            return Ok(None);
        };
        let service_name = self
            .service_name
            .clone()
            .or_else(|| var(SERVICE_NAME_VAR))
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
        Ok(Some(OtlpTarget {
            traces_url,
            service_name,
        }))
    }
}

/// The traces URL of `endpoint`: an absolute `http` or `https` URL with a host. A base
/// endpoint gets `/v1/traces` appended, as the OTLP spec says for the general variable.
fn traces_url(endpoint: &str, base: bool) -> Result<String, String> {
    let endpoint = endpoint.trim();
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("{endpoint:?} is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!(
            "{endpoint:?} is not an http:// or https:// URL (OTLP/HTTP, e.g. http://localhost:4318)"
        ));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{endpoint:?} names no host"));
    }
    if uri.query().is_some() {
        return Err(format!(
            "{endpoint:?} has a query; give the collector's base URL"
        ));
    }
    Ok(if base {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    } else {
        endpoint.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(config: &TelemetryConfig, vars: &[(&str, &str)]) -> Result<Option<String>, String> {
        let found = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        Ok(config.target_with(found)?.map(|t| t.traces_url))
    }

    #[test]
    fn off_unless_an_endpoint_is_configured_and_the_file_wins() {
        let none = TelemetryConfig::default();
        assert_eq!(target(&none, &[]), Ok(None));
        let env = [(ENDPOINT_VAR, "http://env:4318/")];
        assert_eq!(
            target(&none, &env),
            Ok(Some("http://env:4318/v1/traces".into()))
        );
        let traces = [(TRACES_ENDPOINT_VAR, "http://env:4318/custom"), env[0]];
        assert_eq!(
            target(&none, &traces),
            Ok(Some("http://env:4318/custom".into()))
        );
        let file = TelemetryConfig {
            otlp_endpoint: Some("https://collector:4318".into()),
            service_name: None,
        };
        assert_eq!(
            target(&file, &env),
            Ok(Some("https://collector:4318/v1/traces".into()))
        );
        assert_eq!(target(&file, &[(DISABLED_VAR, "true")]), Ok(None));
    }

    #[test]
    fn the_service_name_comes_from_the_file_then_the_environment() {
        let vars = |name: &str| match name {
            ENDPOINT_VAR => Some("http://c:4318".to_string()),
            SERVICE_NAME_VAR => Some("from-env".to_string()),
            _ => None,
        };
        let none = TelemetryConfig::default();
        let found = none
            .target_with(vars)
            .ok()
            .flatten()
            .map(|t| t.service_name);
        assert_eq!(found.as_deref(), Some("from-env"));
        let named = TelemetryConfig {
            service_name: Some("orders".into()),
            ..none
        };
        let found = named
            .target_with(vars)
            .ok()
            .flatten()
            .map(|t| t.service_name);
        assert_eq!(found.as_deref(), Some("orders"));
    }

    #[test]
    fn bad_endpoints_are_named() {
        for (endpoint, expected) in [
            ("localhost:4318", "not an http:// or https:// URL"),
            ("grpc://c:4317", "not an http:// or https:// URL"),
            ("http://", "not a URL"),
            ("http://c:4318/?x=1", "has a query"),
            ("not a url", "not a URL"),
        ] {
            let config = TelemetryConfig {
                otlp_endpoint: Some(endpoint.into()),
                service_name: None,
            };
            let err = config.check().expect_err(endpoint);
            assert!(
                err.contains("telemetry.otlp_endpoint") && err.contains(expected),
                "{endpoint}: {err}"
            );
        }
        let bad_env = target(&TelemetryConfig::default(), &[(ENDPOINT_VAR, "c:4318")]);
        assert!(bad_env.is_err_and(|e| e.contains(ENDPOINT_VAR)));
    }
}
