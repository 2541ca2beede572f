//! hyper answers some requests itself, before the router sees them: a request line or header it
//! cannot parse (400), a URI over 64 KiB (414), too many headers (431). Those answers have an
//! empty body, and no hook shapes them. The API promises a JSON `{"error": "..."}` for every
//! error, so each connection writes through [`JsonErrors`], which gives exactly those answers
//! that body. Only hyper writes an error head with `content-length: 0`: every answer of the
//! router carries a JSON body (see `errors::json_error_bodies`), so nothing else matches.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use reprise_protocol::wire::ErrorBody;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose empty-bodied error answers are rewritten with a JSON body. It does not
/// claim vectored writes, so hyper hands it each answer's head in one contiguous buffer.
pub(super) struct JsonErrors<T> {
    inner: T,
    /// A rewritten answer not yet written through, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> JsonErrors<T> {
    pub(super) fn new(inner: T) -> Self {
        JsonErrors {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> JsonErrors<T> {
    /// Writes what is left of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let rest = &self.pending[self.written..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_pending(cx))?;
        if let Some(rewritten) = with_json_body(buf) {
            this.pending = rewritten;
            // The whole of `buf` is taken; what the socket does not take now goes out on the
            // next write or flush.
            if let Poll::Ready(Err(err)) = this.poll_pending(cx) {
                return Poll::Ready(Err(err));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// `buf` with a JSON body, when it begins with an error head that has none; `None` otherwise.
fn with_json_body(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.") {
        return None;
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = StatusCode::from_bytes(status_line.get(9..12)?.as_bytes()).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let headers: Vec<&str> = lines.collect();
    let empty = headers.iter().any(|line| content_length(line) == Some("0"));
    if !empty {
        return None;
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: message(status),
        choose_instance: Vec::new(),
    })
    .ok()?;
    let mut out = Vec::with_capacity(buf.len() + body.len() + 64);
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for line in headers.iter().filter(|line| content_length(line).is_none()) {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-type: application/json\r\n");
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&buf[head_end + 4..]);
    Some(out)
}

/// The value of a `content-length` header line; `None` for any other line.
fn content_length(line: &str) -> Option<&str> {
    let (name, value) = line.split_once(':')?;
    name.trim()
        .eq_ignore_ascii_case("content-length")
        .then(|| value.trim())
}

/// What went wrong, for the statuses hyper answers with.
fn message(status: StatusCode) -> String {
    match status {
        StatusCode::BAD_REQUEST => {
            "malformed HTTP request: its request line or a header does not parse".to_string()
        }
        StatusCode::URI_TOO_LONG => "request URI too long (at most 65534 bytes)".to_string(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "request headers too large or too many (at most 100)".to_string()
        }
        other => other.canonical_reason().unwrap_or("error").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_414: &[u8] =
        b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n";

    #[test]
    fn an_empty_error_answer_gets_a_json_body_and_keeps_its_other_headers() {
        let rewritten = with_json_body(HYPER_414).expect("rewritten");
        let text = String::from_utf8(rewritten).expect("text");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("date: Mon, 01 Jan 2024"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(!head.contains("content-length: 0"), "{head}");
        let json: ErrorBody = serde_json::from_str(body).expect("JSON body");
        assert!(json.error.contains("URI too long"), "{}", json.error);
    }

    #[test]
    fn answers_with_a_body_or_a_success_status_pass_untouched() {
        let with_body = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{\"error\":\"x\"}";
        assert_eq!(with_body_rewritten(with_body), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(with_body_rewritten(ok), None);
        let body_chunk = b"{\"id\":\"HTTP/1.1 400\"}";
        assert_eq!(with_body_rewritten(body_chunk), None);
        let partial_head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n";
        assert_eq!(with_body_rewritten(partial_head), None);
    }

    fn with_body_rewritten(buf: &[u8]) -> Option<String> {
        with_json_body(buf).map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    #[tokio::test]
    async fn a_rewritten_answer_reaches_the_peer_whole() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(16);
        let mut server = JsonErrors::new(server);
        let writer = tokio::spawn(async move {
            server.write_all(HYPER_414).await.expect("write");
            server.shutdown().await.expect("shutdown");
        });
        let mut got = Vec::new();
        let mut client = client;
        client.read_to_end(&mut got).await.expect("read");
        writer.await.expect("writer");
        assert_eq!(Some(got), with_json_body(HYPER_414));
    }
}
