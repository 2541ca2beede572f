//! Raw HTTP/1.1 over a `TcpStream`, for requests no well-behaved client sends: partial heads,
//! dribbled bodies, lying `Content-Length`s, bytes that are not HTTP at all.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a test waits for an answer before calling the server stuck.
pub const STUCK: Duration = Duration::from_secs(10);

/// A connection whose reads give up after [`STUCK`], so a server that never answers fails the
/// test instead of hanging it.
pub fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect to the server");
    stream
        .set_read_timeout(Some(STUCK))
        .expect("set a read timeout");
    stream
}

/// A response as it came off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics naming the response when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }
}

/// Why no complete response was read.
#[derive(Debug)]
pub enum NoResponse {
    /// The server closed the connection (cleanly or with a reset) before a whole response.
    Closed { got: Vec<u8> },
    /// Nothing (or not enough) arrived within [`STUCK`].
    Stuck { got: Vec<u8> },
}

/// Reads one response with a `Content-Length` body (or none), stopping as soon as it is
/// complete: a server that answers before reading the whole request may reset the connection
/// right after, and the answer must not be lost to that.
pub fn read_response(stream: &mut TcpStream) -> Result<RawResponse, NoResponse> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(response) = complete_response(&got) {
            return Ok(response);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(NoResponse::Closed { got }),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(NoResponse::Stuck { got });
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(NoResponse::Closed { got }),
        }
    }
}

/// Sends `request` on a fresh connection and reads the answer.
pub fn exchange(address: &str, request: &[u8]) -> RawResponse {
    let mut stream = connect(address);
    stream.write_all(request).expect("send the request");
    read_response(&mut stream).unwrap_or_else(|e| {
        panic!(
            "no response to {:?}: {e:?}",
            String::from_utf8_lossy(&request[..request.len().min(120)])
        )
    })
}

/// Waits until the server closes the connection; `Err` with what arrived if it is still open
/// after [`STUCK`].
pub fn await_close(stream: &mut TcpStream) -> Result<Vec<u8>, Vec<u8>> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(got);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ok(got),
        }
    }
}

fn complete_response(bytes: &[u8]) -> Option<RawResponse> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body = bytes.get(head_end + 4..head_end + 4 + length)?;
    Some(RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
    })
}
