//! The admin API's accept loop. `axum::serve` gives hyper no timer, so a client that trickles a
//! request head (slowloris) holds a connection and a task forever. Here each connection is
//! served by hyper's HTTP/1 builder with a header read timeout, and shutdown stays graceful as
//! it was: stop accepting, let requests in flight finish, then return.

use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hyper_errors::JsonErrors;

/// Serves `app` on `listener` until `stop`, then waits for the connections' requests in flight.
/// A connection that does not deliver a whole request head within `header_timeout` (counted
/// from when the server starts waiting for it, so an idle kept-alive connection too) is closed.
/// hyper's own error answers leave with a JSON body (see [`JsonErrors`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: CancellationToken,
) {
    let connections = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    accept_failed(err, &stop).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        connections.spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let mut connection =
                pin!(builder.serve_connection(TokioIo::new(JsonErrors::new(stream)), service));
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = served {
                tracing::debug!("connection ended: {err}");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// A failed accept: the peer's own trouble is skipped; anything else (out of file descriptors,
/// say) is logged and waited out for a moment instead of spinning on it.
async fn accept_failed(err: io::Error, stop: &CancellationToken) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::warn!("cannot accept a connection: {err}");
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
        () = stop.cancelled() => {}
    }
}
