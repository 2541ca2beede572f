//! The admin API under hostile or broken clients, spoken to in raw TCP: a request head or body
//! sent too slowly is cut off, a body larger than `max_body` is refused before it is read, and
//! every error, whoever produces it, is the JSON `{"error": "..."}` the README promises.

use crate::common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::raw::{NoResponse, await_close, connect, exchange, read_response};
use common::server::{Server, config_with};

/// Short timeouts, so a test sees them fire.
const SHORT_TIMEOUTS: &str = "header_timeout = \"1s\"\nbody_timeout = \"1s\"";

/// Writes `bytes` one at a time, `every` apart, until they run out or the server closes.
fn dribble(stream: &mut TcpStream, bytes: &[u8], every: Duration) {
    for byte in bytes {
        if stream.write_all(&[*byte]).is_err() {
            return;
        }
        std::thread::sleep(every);
    }
}

#[test]
fn slowloris_connections_are_closed_at_the_header_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config_with(dir.path(), SHORT_TIMEOUTS, ""));

    // Ten connections each send a request head a byte every 200 ms, never finishing it: the
    // timeout counts from the head's start, so trickling bytes does not keep one open.
    let started = Instant::now();
    let slow: Vec<_> = (0..10)
        .map(|_| {
            let address = server.address().to_string();
            std::thread::spawn(move || {
                let mut stream = connect(&address);
                let mut writer = stream.try_clone().expect("clone the stream");
                let head = format!(
                    "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}",
                    "a".repeat(100)
                );
                let dribbler = std::thread::spawn(move || {
                    dribble(&mut writer, head.as_bytes(), Duration::from_millis(200))
                });
                let closed = await_close(&mut stream);
                let at = started.elapsed();
                let _ = stream.shutdown(std::net::Shutdown::Both);
                let _ = dribbler.join();
                (closed, at)
            })
        })
        .collect();
    for connection in slow {
        let (closed, at) = connection.join().expect("slow client");
        let got = closed.unwrap_or_else(|got| {
            panic!(
                "still open after {at:?}; got {:?}",
                String::from_utf8_lossy(&got)
            )
        });
        assert!(got.is_empty(), "no answer to half a head: {got:?}");
        assert!(
            at >= Duration::from_millis(900) && at < Duration::from_secs(5),
            "closed after {at:?}, the header timeout is 1 s"
        );
    }

    // A request that comes whole is served as before.
    let answer = exchange(
        server.address(),
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn a_body_dribbled_past_the_body_timeout_gets_408_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config_with(dir.path(), SHORT_TIMEOUTS, ""));

    let body = serde_json::json!({"workflow": "fib", "input": 3, "queue": "fib"}).to_string();
    let head = format!(
        "POST /workflows HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer secret\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len() + 100
    );
    let mut stream = connect(server.address());
    stream.write_all(head.as_bytes()).expect("head");
    let started = Instant::now();
    // A byte every 100 ms, checking for an answer in between: the body would take 6 s.
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("short read timeout");
    let mut padded = body.into_bytes();
    padded.extend(std::iter::repeat_n(b' ', 100));
    let mut answer = None;
    for byte in &padded {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        match read_response(&mut stream) {
            Ok(response) => {
                answer = Some(response);
                break;
            }
            Err(NoResponse::Stuck { got }) if got.is_empty() => {}
            Err(other) => panic!("broken answer after {:?}: {other:?}", started.elapsed()),
        }
    }
    let answer = match answer {
        Some(answer) => answer,
        None => {
            stream
                .set_read_timeout(Some(common::raw::STUCK))
                .expect("read timeout");
            read_response(&mut stream).unwrap_or_else(|e| panic!("no answer: {e:?}"))
        }
    };
    let took = started.elapsed();
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
    let error = answer.json()["error"].as_str().map(str::to_string);
    let error = error.unwrap_or_else(|| panic!("no error string: {answer:?}"));
    assert!(error.contains("body_timeout"), "{error}");
    assert_eq!(answer.header("content-type"), Some("application/json"));

    // Nothing was started by the cut-off request.
    let listed = exchange(
        server.address(),
        b"GET /workflows HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer secret\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(listed.json(), serde_json::json!([]), "{listed:?}");
}

#[test]
fn a_huge_content_length_is_refused_at_once_without_reading_the_body() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config_with(dir.path(), "", ""));

    // Headers only: the body never comes, so an answer must not wait for it.
    for (token, expected) in [("secret", 413), ("wrong", 401)] {
        let head = format!(
            "POST /workflows HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n"
        );
        let started = Instant::now();
        let answer = exchange(server.address(), head.as_bytes());
        let took = started.elapsed();
        assert_eq!(answer.status, expected, "{answer:?}");
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
        let error = answer.json()["error"].as_str().map(str::to_string);
        let error = error.unwrap_or_else(|| panic!("no error string: {answer:?}"));
        if expected == 413 {
            assert!(error.contains("max_body"), "{error}");
            assert!(error.contains("16384"), "names the limit: {error}");
        }
    }
}

/// A request as raw bytes: `method target`, authorised, with `body` as JSON unless
/// `content_type` says otherwise; the connection closes after the answer.
fn request(method: &str, target: &str, content_type: Option<&str>, body: &str) -> Vec<u8> {
    let content_type = content_type
        .map(|t| format!("Content-Type: {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer secret\r\n\
         {content_type}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn every_error_is_json_with_an_error_string_whoever_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config_with(dir.path(), "", ""));
    let json = Some("application/json");
    let huge_uri = format!("/workflows/{}", "a".repeat(70_000));
    let many_headers = format!(
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\n{}\r\n",
        (0..150)
            .map(|i| format!("X-H{i}: v\r\n"))
            .collect::<String>()
    );

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unknown path", request("GET", "/nope", None, ""), 404),
        (
            "unknown path under /workflows",
            request("GET", "/workflows/a/b/c", None, ""),
            404,
        ),
        (
            "wrong method",
            request("DELETE", "/workflows", None, ""),
            405,
        ),
        (
            "wrong method on /healthz",
            request("POST", "/healthz", None, ""),
            405,
        ),
        (
            "id not UTF-8",
            request("GET", "/workflows/%FF", None, ""),
            400,
        ),
        (
            "id not UTF-8, steps",
            request("GET", "/workflows/%C3%28/steps", None, ""),
            400,
        ),
        (
            "malformed JSON",
            request("POST", "/workflows", json, "{\"workflow\": "),
            400,
        ),
        (
            "wrong JSON type",
            request("POST", "/workflows", json, "{\"workflow\": 3}"),
            400,
        ),
        (
            "JSON not an object",
            request("POST", "/workflows", json, "[1, 2]"),
            400,
        ),
        (
            "no content type",
            request("POST", "/workflows", None, "{\"workflow\": \"fib\"}"),
            415,
        ),
        (
            "fork body of the wrong type",
            request("POST", "/workflows/x/fork", json, "{\"from_step\": -1}"),
            400,
        ),
        (
            "bad query parameter",
            request("GET", "/workflows?limit=many", None, ""),
            400,
        ),
        (
            "unknown query parameter",
            request("GET", "/workflows?colour=red", None, ""),
            400,
        ),
        (
            "bad result timeout",
            request("GET", "/workflows/x/result?timeout_ms=soon", None, ""),
            400,
        ),
        ("huge URI", request("GET", &huge_uri, None, ""), 414),
        ("too many headers", many_headers.into_bytes(), 431),
        ("not HTTP at all", b"HELLO THERE\r\n\r\n".to_vec(), 400),
        (
            "bad header line",
            b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            400,
        ),
    ];
    // Every case is tried before failing, so one run shows every answer that is wrong.
    let mut wrong = Vec::new();
    for (what, bytes, expected) in cases {
        let answer = exchange(server.address(), &bytes);
        let error = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|body| body["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        let is_json = answer.header("content-type") == Some("application/json");
        if answer.status != expected || !is_json || error.is_empty() {
            let body: String = answer.body.chars().take(200).collect();
            wrong.push(format!(
                "{what}: expected {expected} JSON, got {} {:?} {body:?}",
                answer.status,
                answer.header("content-type")
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
