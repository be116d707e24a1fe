//! A blocking client for the admin API and `/metrics`, for the tests that
//! check what a server reports.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::Value as Json;

use super::TIMEOUT;

/// Sends one request over HTTP/1.0 (the server closes after answering),
/// a POST as JSON as the API requires; returns the status and the body.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let json = ["Content-Type: application/json"];
    let headers: &[&str] = if method == "POST" { &json } else { &[] };
    request_with(addr, method, path, headers)
}

/// Sends one request with exactly these extra header lines (`Name: value`).
pub fn request_with(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> (u16, String) {
    let (status, _, body) = exchange(addr, method, path, headers);
    (status, body)
}

/// [`request_with`], also returning the response's head (status line and
/// headers).
pub fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
) -> (u16, String, String) {
    let mut socket = TcpStream::connect(addr).expect("the admin API accepts");
    socket.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        socket,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .expect("request sent");
    let mut response = String::new();
    socket.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a status line: {head}"));
    (status, head.to_owned(), body.to_owned())
}

pub fn get_json(addr: SocketAddr, path: &str) -> Json {
    let (status, body) = request(addr, "GET", path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// The admin API's entry for the connection from `address` (the client's
/// local address).
pub fn client(admin: SocketAddr, address: &str) -> Json {
    let page = get_json(admin, "/api/v1/clients?limit=1000");
    let found = page["clients"]
        .as_array()
        .and_then(|clients| clients.iter().find(|c| c["address"] == address));
    found
        .cloned()
        .unwrap_or_else(|| panic!("{address} in {page}"))
}

/// `/metrics` as series → value (`name{labels}` as written).
pub fn scrape(addr: SocketAddr) -> HashMap<String, f64> {
    series(&metrics_text(addr))
}

/// An exposition as series → value (`name{labels}` as written).
pub fn series(exposition: &str) -> HashMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// The sum of a metric over its shards.
pub fn sum(metrics: &HashMap<String, f64>, name: &str) -> f64 {
    let prefix = format!("{name}{{");
    let values: Vec<f64> = metrics
        .iter()
        .filter(|(series, _)| series.starts_with(&prefix))
        .map(|(_, v)| *v)
        .collect();
    assert!(!values.is_empty(), "{name} in /metrics");
    values.iter().sum()
}

/// The body of `/metrics`, as Prometheus reads it.
pub fn metrics_text(addr: SocketAddr) -> String {
    let (status, body) = request(addr, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// What `promtool check metrics` (Debian's `prometheus` package, which
/// `.ci/run` installs) says of `exposition`: whether it passed, and its
/// output (warnings included). Panics when promtool is not installed:
/// a missing checker must fail the test, not pass it.
pub fn promtool_check(exposition: &str) -> (bool, String) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool not found ({e}): apt-get install prometheus, as .ci/run does")
        });
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(exposition.as_bytes())
        .expect("promtool reads the exposition");
    let output = child.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}
