//! An order saga, the guide's real case: reserve stock over TCP, charge a payment API over
//! HTTP with a secret key (retried with backoff on failure), and release the stock when the
//! payment cannot be made. The instance's config names the services:
//! `payments_url` (`http://host:port`) and `inventory_addr` (`host:port`).
//!
//! The other workflows exist for the host's tests of what steps and workflow code may reach.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use reprise_guest::http::{self, Request};
use reprise_guest::prelude::*;
use serde::{Deserialize, Serialize};

/// What a customer ordered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub item: String,
    pub quantity: u32,
    pub amount_cents: u64,
}

/// A paid order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub order_id: String,
    pub reservation: String,
    pub charge: String,
}

/// The charge the payment API created.
#[derive(Deserialize)]
struct Charge {
    id: String,
}

/// One request line to the inventory service, one answer line: `OK <detail>` or `ERR <why>`.
fn inventory(addr: &str, line: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("inventory at {addr}: {e}"))?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("inventory at {addr}: {e}"))?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(|e| format!("inventory at {addr}: {e}"))?;
    match answer.trim_end().split_once(' ') {
        Some(("OK", detail)) => Ok(detail.to_string()),
        _ if answer.trim_end() == "OK" => Ok(String::new()),
        _ => Err(format!("inventory refused {line:?}: {}", answer.trim_end())),
    }
}

#[step(max_attempts = 3, interval_ms = 100)]
fn reserve_stock(inventory_addr: String, order: Order) -> Result<String, String> {
    let line = format!("RESERVE {} {} {}", order.id, order.item, order.quantity);
    inventory(&inventory_addr, &line)
}

#[step(max_attempts = 4, interval_ms = 200, backoff_rate = 2.0)]
fn charge_payment(payments_url: String, order: Order) -> Result<String, String> {
    let key = reprise_guest::secret("PAYMENT_KEY")?;
    let body = serde_json::json!({ "order_id": order.id, "amount_cents": order.amount_cents });
    let response = Request::post(format!("{payments_url}/charges"))
        .header("authorization", format!("Bearer {key}"))
        .json(&body)?
        .send()?;
    if !response.is_success() {
        // An error: retried per the policy above (4 attempts, 200 ms, then 400, then 800).
        return Err(format!("payment API answered {}", response.status));
    }
    Ok(response.json::<Charge>()?.id)
}

#[step(max_attempts = 5, interval_ms = 100)]
fn release_stock(inventory_addr: String, reservation: String) -> Result<(), String> {
    inventory(&inventory_addr, &format!("RELEASE {reservation}")).map(drop)
}

fn setting(key: &str) -> Result<String, String> {
    workflow_info()
        .config
        .get(key)
        .cloned()
        .ok_or_else(|| format!("the instance has no config value {key:?}"))
}

/// Reserve, charge, and release the reservation if the charge cannot be made.
#[workflow]
pub fn checkout(order: Order) -> Result<Receipt, String> {
    let (payments, stock) = (setting("payments_url")?, setting("inventory_addr")?);
    let reservation = reserve_stock(stock.clone(), order.clone())?;
    match charge_payment(payments, order.clone()) {
        Ok(charge) => Ok(Receipt {
            order_id: order.id,
            reservation,
            charge,
        }),
        Err(e) => {
            release_stock(stock, reservation)?;
            Err(format!("payment failed: {e}; stock released"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// For the host's tests of the sandbox.

/// Tries one kind of I/O straight from workflow code, which must be refused: the error text,
/// or what it read if it was not.
#[workflow]
pub fn io_from_workflow_code(kind: String) -> Result<String, String> {
    let result = match kind.as_str() {
        "http" => http::get(setting("payments_url")?)
            .map(|r| format!("status {}", r.status))
            .map_err(|e| e.to_string()),
        "secret" => reprise_guest::secret("PAYMENT_KEY").map_err(|e| e.to_string()),
        "tcp" => TcpStream::connect(setting("inventory_addr")?)
            .map(|_| "connected".to_string())
            .map_err(|e| e.to_string()),
        "file" => std::fs::read_to_string("/data/hello.txt").map_err(|e| e.to_string()),
        "dns" => std::net::ToSocketAddrs::to_socket_addrs("localhost:7000")
            .map(|addrs| format!("{} addresses", addrs.count()))
            .map_err(|e| e.to_string()),
        // wasi:http straight from an off-the-shelf client, past the SDK's own check.
        "raw_http" => waki_get(&setting("payments_url")?).map(|(status, _)| status.to_string()),
        other => return Err(format!("no such kind {other:?}")),
    };
    result
}

thread_local! {
    /// What a step opened and kept past its end (see `use_kept_io`).
    static KEPT_FILE: std::cell::RefCell<Option<std::fs::File>> = const { std::cell::RefCell::new(None) };
    static KEPT_TCP: std::cell::RefCell<Option<TcpStream>> = const { std::cell::RefCell::new(None) };
}

/// Opens a file or a connection in a step and keeps it past the step's end.
#[step(retries = false)]
fn open_and_keep(kind: String) -> Result<String, String> {
    match kind.as_str() {
        "file" => {
            let file = std::fs::File::open("/data/hello.txt").map_err(|e| e.to_string())?;
            KEPT_FILE.with(|k| *k.borrow_mut() = Some(file));
        }
        _ => {
            let stream =
                TcpStream::connect(setting("inventory_addr")?).map_err(|e| e.to_string())?;
            KEPT_TCP.with(|k| *k.borrow_mut() = Some(stream));
        }
    }
    Ok(kind)
}

/// Uses, from workflow code, a file or a connection a step opened and kept: what it read or
/// wrote, or why it could not.
#[workflow]
pub fn use_kept_io(kind: String) -> Result<String, String> {
    open_and_keep(kind.clone())?;
    if kind == "file" {
        let mut text = String::new();
        let read = KEPT_FILE.with(|k| {
            k.borrow_mut()
                .as_mut()
                .map(|f| std::io::Read::read_to_string(f, &mut text))
        });
        return match read {
            Some(Ok(_)) => Ok(format!("read {text:?}")),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("nothing kept".into()),
        };
    }
    let wrote = KEPT_TCP.with(|k| {
        k.borrow_mut()
            .as_mut()
            .map(|s| s.write_all(b"RESERVE kept 1\n").and_then(|()| s.flush()))
    });
    match wrote {
        Some(Ok(())) => Ok("wrote".into()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("nothing kept".into()),
    }
}

/// Looks `name` up from a step: how many addresses it has, or why it may not.
#[workflow]
pub fn lookup_in_step(name: String) -> Result<String, String> {
    resolve(name).map_err(|e| e.to_string())
}

#[step(retries = false)]
fn resolve(name: String) -> Result<String, String> {
    std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 7000))
        .map(|addrs| format!("{} addresses", addrs.count()))
        .map_err(|e| format!("looking up {name}: {e}"))
}

#[step(retries = false)]
fn read_file(path: String) -> Result<String, String> {
    std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))
}

#[step(retries = false)]
fn write_file(path: String, text: String) -> Result<String, String> {
    std::fs::write(&path, text).map_err(|e| format!("writing {path}: {e}"))?;
    Ok(format!("wrote {path}"))
}

/// Reads `/data/<name>` in a step, then tries to write `/data/out.txt`: `[read, write]`, each
/// the text or the error.
#[workflow]
pub fn files(name: String) -> Vec<String> {
    let read = read_file(format!("/data/{name}")).map_err(|e| e.to_string());
    let write = write_file("/data/out.txt".into(), "written".into()).map_err(|e| e.to_string());
    [read, write]
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| e))
        .collect()
}

#[step(retries = false)]
fn get_url(url: String) -> Result<(u16, String), String> {
    info!("GET {url}");
    let response = http::get(url)?;
    Ok((response.status, response.text()?))
}

/// GETs `url` from a step: `[status, body]`.
#[workflow]
pub fn fetch(url: String) -> Result<(u16, String), String> {
    let (status, body) = get_url(url)?;
    info!("fetched: {status}");
    Ok((status, body))
}

fn waki_get(url: &str) -> Result<(u16, String), String> {
    let response = waki::Client::new()
        .get(url)
        .send()
        .map_err(|e| format!("{e:#}"))?;
    let status = response.status_code();
    let body = response.body().map_err(|e| format!("{e:#}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[step(retries = false)]
fn get_with_waki(url: String) -> Result<(u16, String), String> {
    waki_get(&url)
}

/// GETs `url` from a step with the waki crate: `[status, body]`.
#[workflow]
pub fn fetch_with_waki(url: String) -> Result<(u16, String), String> {
    Ok(get_with_waki(url)?)
}

#[step(retries = false)]
fn read_secret(name: String) -> Result<usize, String> {
    Ok(reprise_guest::secret(&name)?.len())
}

/// The length of a secret read in a step (never the value).
#[workflow]
pub fn secret_length(name: String) -> Result<usize, String> {
    Ok(read_secret(name)?)
}

/// POSTs a charge to `url`. When the service answers `slow`, the step then takes a minute to
/// finish: time for a test to kill the host between the charge and its commit.
#[step(retries = false)]
fn post_charge(url: String) -> Result<String, String> {
    let response = http::Request::post(url).body("{}").send()?;
    let body = response.text()?;
    if body == "slow" {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
    Ok(body)
}

/// Charges once through `url`, sending the step's idempotency key as every request does.
#[workflow]
pub fn charge_once(url: String) -> Result<String, String> {
    post_charge(url).map_err(|e| e.to_string())
}

/// Makes the link `/data/{link}` → `target` from a step, straight through wasi:filesystem.
#[step(retries = false)]
fn make_link(link: String, target: String) -> Result<String, String> {
    #[cfg(target_family = "wasm")]
    {
        let dirs = wasip2::filesystem::preopens::get_directories();
        let (dir, _) = dirs
            .iter()
            .find(|(_, path)| path == "/data")
            .ok_or("no directory /data is granted")?;
        dir.symlink_at(&target, &link)
            .map_err(|e| format!("linking {link} -> {target}: {e}"))?;
        Ok(format!("linked {link}"))
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Err(format!(
            "{link} -> {target}: links are made in a component only"
        ))
    }
}

/// Links `link` to `target` in the granted directory `/data`: what the step said.
#[workflow]
pub fn link(link: String, target: String) -> Result<String, String> {
    make_link(link, target).map_err(|e| e.to_string())
}

#[step(retries = false)]
fn get_keyed(url: String) -> Result<u16, String> {
    let key = reprise_guest::secret("SHOP_KEY")?;
    Ok(http::get(format!("{url}?api_key={key}"))?.status)
}

/// GETs `url` with the secret `SHOP_KEY` as its `api_key` query parameter, from a step: the
/// status, or the step's error (which must not show the key).
#[workflow]
pub fn get_with_key(url: String) -> Result<u16, String> {
    get_keyed(url).map_err(|e| e.to_string())
}

#[cfg(target_family = "wasm")]
thread_local! {
    /// The response future of a request a step sent, kept past the step (see
    /// `take_kept_response`).
    static KEPT_RESPONSE: std::cell::RefCell<Option<wasip2::http::types::FutureIncomingResponse>> =
        const { std::cell::RefCell::new(None) };
}

/// Sends a GET to `authority` (`host:port`) straight through wasi:http and keeps the response's
/// future without taking it.
#[step(retries = false)]
fn send_and_keep(authority: String) -> Result<String, String> {
    #[cfg(target_family = "wasm")]
    {
        use wasip2::http::types::{Fields, OutgoingRequest, Scheme};
        let request = OutgoingRequest::new(Fields::new());
        request
            .set_scheme(Some(&Scheme::Http))
            .map_err(|()| "scheme")?;
        request
            .set_authority(Some(&authority))
            .map_err(|()| "authority")?;
        request
            .set_path_with_query(Some("/ping"))
            .map_err(|()| "path")?;
        let future =
            wasip2::http::outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
        KEPT_RESPONSE.with(|k| *k.borrow_mut() = Some(future));
        Ok(authority)
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Err(format!("{authority}: raw wasi:http in a component only"))
    }
}

/// Takes, from workflow code, the response of a request a step sent and kept: its status, or
/// why it could not.
#[workflow]
pub fn take_kept_response(authority: String) -> Result<String, String> {
    send_and_keep(authority)?;
    #[cfg(target_family = "wasm")]
    {
        let future = KEPT_RESPONSE
            .with(|k| k.borrow_mut().take())
            .ok_or("nothing kept")?;
        future.subscribe().block();
        match future.get() {
            Some(Ok(Ok(response))) => Ok(format!("status {}", response.status())),
            Some(Ok(Err(code))) => Err(format!("{code:?}")),
            Some(Err(())) => Err("taken already".into()),
            None => Err("not ready".into()),
        }
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Err("raw wasi:http in a component only".into())
    }
}

/// Asks, from workflow code, whether the response of a request a step sent is ready: what the
/// answer was, or why it could not ask.
#[workflow]
pub fn poll_kept_response(authority: String) -> Result<String, String> {
    send_and_keep(authority)?;
    #[cfg(target_family = "wasm")]
    {
        let ready = KEPT_RESPONSE.with(|k| k.borrow().as_ref().map(|f| f.subscribe().ready()));
        Ok(format!("ready {ready:?}"))
    }
    #[cfg(not(target_family = "wasm"))]
    {
        Err("raw wasi:http in a component only".into())
    }
}

reprise_guest::export!(workflows = [checkout]);
