//! Outgoing HTTP from steps through `wasi:http`: a request goes out only inside a step attempt
//! and only to a host of the instance's `allow_http`; a refusal reaches the guest as
//! `internal-error` carrying a message that says how to grant it. What is let through goes out
//! over [`super::http_client`]'s pooled connections.

use std::time::Duration;

use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

use crate::grants::{Kind, not_granted};

use super::Access;

/// The `wasi:http` hooks of one instance: the gate in front of wasmtime-wasi-http's client.
pub(crate) struct HttpGate {
    access: Access,
}

impl HttpGate {
    pub(crate) fn new(access: Access) -> Self {
        HttpGate { access }
    }

    /// Whether this request may go out now.
    fn check(&self, uri: &http::Uri) -> Result<(), String> {
        let host = uri.host().unwrap_or_default();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        self.access.in_step(|| format!("HTTP to {host}:{port}"))?;
        if self
            .access
            .grants
            .http
            .iter()
            .any(|p| p.matches(host, port))
        {
            return Ok(());
        }
        Err(self
            .access
            .refuse(not_granted(Kind::Http, &self.access.instance, host, port)))
    }
}

/// The request's own timeouts, and the instance's `http_timeout` for those it did not set.
fn with_timeouts(options: Option<RequestOptions>, default: Duration) -> RequestOptions {
    let options = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: options.connect_timeout.or(Some(default)),
        first_byte_timeout: options.first_byte_timeout.or(Some(default)),
        between_bytes_timeout: options.between_bytes_timeout.or(Some(default)),
    }
}

type Sent = Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>;
type Result<T, E = Error> = std::result::Result<T, E>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        drop(fut);
        let verdict = self.check(request.uri());
        let options = with_timeouts(options, self.access.grants.http_timeout);
        Box::new(async move {
            verdict.map_err(|message| Error::InternalError(Some(message)))?;
            let response = super::http_client::send(request, options).await?;
            // The pool drives the connection: nothing is left for the caller to await.
            let io = async { Ok(()) };
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
