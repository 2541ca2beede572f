//! Sending a [`Request`] through `wasi:http/outgoing-handler`, blocking until the whole
//! response has been read.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme, http_error_code,
};
use wasip2::io::streams::StreamError;

use reprise_protocol::redact::redacted_url;

use super::{HttpError, Method, Request, Response, parse_url};

/// Bytes read from the response body at a time.
const READ_CHUNK: u64 = 64 * 1024;
/// Bytes written to the request body at a time (wasi:http's `check-write` limit is 4 KiB+).
const WRITE_CHUNK: usize = 4096;

pub(super) fn send(request: &Request) -> Result<Response, HttpError> {
    let url = parse_url(&request.url)?;
    let what = format!("{} {}", request.method.as_str(), redacted_url(&request.url));
    let failed = |message: String| HttpError::Failed {
        request: what.clone(),
        message,
    };
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone().into_bytes()))
        .collect();
    // The whole body is known: say its length, so it is not sent chunked (some servers and
    // proxies read a chunked body as empty).
    if request.method != Method::Get
        && request.method != Method::Head
        && !headers
            .iter()
            .any(|(n, _)| n == "content-length" || n == "transfer-encoding")
    {
        headers.push((
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let fields = Fields::from_list(&headers).map_err(|e| failed(format!("bad header: {e:?}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let scheme = if url.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let method = wasi_method(&request.method);
    let set = outgoing
        .set_method(&method)
        .and(outgoing.set_scheme(Some(&scheme)))
        .and(outgoing.set_authority(Some(url.authority)))
        .and(outgoing.set_path_with_query(Some(&url.path_with_query)));
    set.map_err(|()| failed("the request's method, scheme, authority or path was refused".into()))?;
    let body = outgoing
        .body()
        .map_err(|()| failed("the request body could not be opened".into()))?;
    let options = request.timeout.map(|timeout| {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let options = RequestOptions::new();
        // A host that does not support a timeout refuses it; the instance's applies then.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });
    let future = outgoing_handler::handle(outgoing, options).map_err(|e| failed(describe(&e)))?;

    // The body is streamed after `handle`: the host reads it while it sends. An empty one
    // needs no stream.
    let written = write_body(&body, &request.body).map_err(failed);
    let finished = OutgoingBody::finish(body, None).map_err(|e| failed(describe(&e)));

    // The response is never ready this early: wait first, then take it. A server may answer
    // before it read the whole body (an early error, or a body it ignores) and close it: its
    // answer wins over the write that failed, as in any HTTP client.
    future.subscribe().block();
    let incoming = match future.get() {
        Some(Ok(Ok(response))) => response,
        other => {
            written?;
            finished?;
            return Err(match other {
                Some(Ok(Err(code))) => failed(describe(&code)),
                Some(Err(())) => failed("the response was already taken".into()),
                _ => failed("the response was not ready after waiting for it".into()),
            });
        }
    };
    let status = incoming.status();
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let body_handle = incoming
        .consume()
        .map_err(|()| failed("the response body could not be opened".into()))?;
    let mut body = Vec::new();
    {
        let stream = body_handle
            .stream()
            .map_err(|()| failed("the response body could not be read".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => {
                    return Err(failed(format!(
                        "reading the response body: {}",
                        stream_error(e)
                    )));
                }
            }
        }
    }
    drop(IncomingBody::finish(body_handle));
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// Writes `bytes` to a request's body (nothing for an empty one); why it could not.
fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| "the request body could not be written".to_string())?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| format!("writing the request body: {}", stream_error(e)))?;
    }
    Ok(())
}

fn wasi_method(method: &Method) -> WasiMethod {
    match method {
        Method::Get => WasiMethod::Get,
        Method::Head => WasiMethod::Head,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Delete => WasiMethod::Delete,
        Method::Patch => WasiMethod::Patch,
        Method::Options => WasiMethod::Options,
        Method::Other(name) => WasiMethod::Other(name.clone()),
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "the stream was closed".into(),
        StreamError::LastOperationFailed(err) => match http_error_code(&err) {
            Some(code) => describe(&code),
            None => "an I/O error".into(),
        },
    }
}

/// Words for a `wasi:http` error; the host's own message when it gave one (a refusal names
/// the host and the key that would grant it).
fn describe(code: &ErrorCode) -> String {
    match code {
        ErrorCode::InternalError(Some(message)) => message.clone(),
        ErrorCode::DnsError(_) => "DNS lookup failed".into(),
        ErrorCode::DnsTimeout => "DNS lookup timed out".into(),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTimeout => "connecting timed out".into(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "timed out waiting for the response".into()
        }
        ErrorCode::ConnectionTerminated => "the connection was closed".into(),
        ErrorCode::TlsCertificateError => "the server's TLS certificate was refused".into(),
        ErrorCode::TlsProtocolError => "TLS failed".into(),
        ErrorCode::HttpRequestDenied => "the host denied the request".into(),
        ErrorCode::HttpProtocolError => "HTTP protocol error".into(),
        other => format!("{other:?}"),
    }
}
