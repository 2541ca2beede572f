//! The client behind steps' HTTP: one pool of kept-alive connections for the whole process,
//! as a native client keeps, so a step calling the same service again does not pay a new TCP
//! (and TLS) handshake each time. Timeouts are per request, as `wasi:http` sets them.

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::https::{PooledClient, pooled_client};

type Pool = PooledClient<WasiBody>;

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(pooled_client)
}

/// Sends `request` over a pooled connection. `options` has every timeout set.
pub(super) async fn send(
    request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Result<http::Response<WasiBody>, Error> {
    // Host and port only: an authority's user info is a password.
    let uri = request.uri();
    let authority = match (uri.host(), uri.port_u16()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (host, _) => host.unwrap_or_default().to_string(),
    };
    let until_head = options
        .connect_timeout
        .unwrap_or(Duration::MAX)
        .saturating_add(options.first_byte_timeout.unwrap_or(Duration::MAX));
    let response = match tokio::time::timeout(until_head, pool().request(request)).await {
        Ok(response) => response.map_err(|e| client_error(&authority, &e))?,
        Err(_) => return Err(Error::HttpResponseTimeout),
    };
    let idle = options
        .between_bytes_timeout
        .unwrap_or(Duration::MAX)
        .max(Duration::from_nanos(1));
    Ok(response.map(|incoming| {
        IdleTimeout {
            inner: incoming.map_err(Error::from),
            idle,
            timer: None,
            armed: false,
        }
        .boxed_unsync()
    }))
}

fn client_error(authority: &str, err: &hyper_util::client::legacy::Error) -> Error {
    let io = std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    if err.is_connect() && io == Some(std::io::ErrorKind::ConnectionRefused) {
        return Error::ConnectionRefused;
    }
    let mut message = format!("HTTP to {authority}: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Error::InternalError(Some(message))
}

/// A response body that fails when no frame arrives for `idle`. One timer per body, re-armed
/// when a wait begins.
struct IdleTimeout<B> {
    inner: B,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
}

impl<B: Body<Data = Bytes, Error = Error> + Unpin> Body for IdleTimeout<B> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            self.armed = false;
            return Poll::Ready(frame);
        }
        let this = &mut *self;
        let deadline = tokio::time::Instant::now()
            .checked_add(this.idle)
            .unwrap_or_else(far_future);
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !this.armed {
            timer.as_mut().reset(deadline);
            this.armed = true;
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}
