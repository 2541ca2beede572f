//! The process's outgoing HTTP(S) client: hyper over rustls with the webpki roots, keeping
//! idle connections for 30 s. Steps' `wasi:http` and the OTLP exporter both send through it,
//! so there is one TLS stack and one way to build a pool.

use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled client sending bodies of type `B` over `http://` or `https://`.
pub(crate) type PooledClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// A new pool; requests carry their own timeouts.
pub(crate) fn pooled_client<B>() -> PooledClient<B>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}
