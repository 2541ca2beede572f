//! The exporter's HTTP client: hyper with the rustls stack steps already use, so OTLP over
//! `https://` works without a second TLS library, and every request is bounded in time.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

use crate::https::{PooledClient, pooled_client};

/// A collector's answer is a small status message; anything larger is not one.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Sends export requests over pooled connections.
pub(super) struct OtlpClient {
    client: PooledClient<Full<Bytes>>,
    timeout: Duration,
}

impl OtlpClient {
    /// A client whose every exchange, connect to last response byte, ends within `timeout`.
    pub(super) fn new(timeout: Duration) -> Self {
        OtlpClient {
            client: pooled_client(),
            timeout,
        }
    }
}

impl fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HttpClient for OtlpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let exchange = async {
            let response = self.client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await?
                .to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the OTLP collector did not answer within {} ms",
                self.timeout.as_millis()
            )
            .into()),
        }
    }
}
