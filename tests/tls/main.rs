//! TLS on the shards end to end (issue 15): RTMPS, HTTPS-FLV and WSS.
//! ffmpeg publishes over `rtmps://` and ffprobe and ffmpeg read it back
//! over `rtmps://` and `https://`; WSS, HTTPS-FLV and RTMPS players of
//! our own read every frame; SNI picks among `[[tls.certificates]]`;
//! certificates reload under a playing client with no gap, and a broken
//! reload keeps the old ones; startup refuses certificates that cannot
//! serve; bad input closes that connection only, counted and logged
//! once; `ringcast doctor` says what the kernel offers. The helpers are
//! here, the tests by theme in `players`, `sni`, `reload`, `startup` and
//! `bad_input`.
//!
//! A CA and the server certificates are made when the tests run (rcgen)
//! and written as PEM into a temporary directory removed at the end.
//! The clients are rustls over blocking sockets ([`common::TlsStream`]).
//! These tests need ffmpeg (`apt-get install ffmpeg`); without it they
//! fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bad_input;
#[path = "../common/mod.rs"]
mod common;
mod players;
mod reload;
mod sni;
mod startup;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use common::admin::{scrape, sum};
use common::pki::{Cert, Pki};
use common::{Client, TIMEOUT, TlsStream, start_server};
use ringcast::config::Config;
use ringcast::server::ServerHandle;
use ringcast::session::ClientConfig;
use ringcast_tls::{CertFiles, ServerTls};
use rustls::pki_types::{CertificateDer, ServerName};

/// What the test servers' default certificate is valid for: the names
/// clients on loopback connect by.
const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

/// Connects to `addr` as a client of `name` (no SNI for an IP address)
/// and completes the handshake.
fn tls_connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> io::Result<TlsStream> {
    let socket = TcpStream::connect(addr)?;
    socket.set_nodelay(true)?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    let name = ServerName::try_from(name.to_owned()).expect("a server name");
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    let mut stream = TlsStream::new(conn, socket);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The certificate the server showed.
fn shown(stream: &TlsStream) -> CertificateDer<'static> {
    let chain = stream.conn.peer_certificates().expect("a certificate");
    chain[0].clone().into_owned()
}

/// An RTMP client over TLS to `addr`, connected to `app`.
fn rtmps_client(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    app: &str,
) -> Client<TlsStream> {
    let stream = tls_connect(addr, "127.0.0.1", config).expect("a TLS connection");
    let tc_url = format!("rtmps://{addr}/{app}");
    match Client::start(stream, ClientConfig::new(app, &tc_url)) {
        Ok(client) => client,
        Err(info) => panic!("connect rejected: {info:?}"),
    }
}

/// A server with its RTMPS and HTTPS listeners on ephemeral ports
/// serving `cert`, with `tweak` applied; its log captured
/// ([`common::logs`]).
fn start_tls(shards: usize, cert: &Cert, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    common::logs::capture();
    let certificates = vec![cert.files.clone()];
    let loaded = ServerTls::load(&certificates, SystemTime::now()).expect("the test certificate");
    start_server(shards, |c| {
        c.tls.listen = vec!["127.0.0.1:0".parse().unwrap()];
        c.tls.http_listen = vec!["127.0.0.1:0".parse().unwrap()];
        c.tls.certificates = certificates;
        c.tls.server = Some(loaded);
        tweak(c);
    })
}

/// A server configured as `config` says, its log captured.
fn start_config(config: Config) -> ServerHandle {
    common::logs::capture();
    let shards = config.shards.unwrap_or(1);
    start_server(shards, |c| *c = config)
}

fn rtmp(server: &ServerHandle) -> SocketAddr {
    server.local_addrs()[0]
}

fn http(server: &ServerHandle) -> SocketAddr {
    server.http_addr().expect("the HTTP listener is on")
}

fn rtmps(server: &ServerHandle) -> SocketAddr {
    server.rtmps_addrs()[0]
}

fn https(server: &ServerHandle) -> SocketAddr {
    server.https_addrs()[0]
}

/// A counter's total over the shards, as `/metrics` says.
fn metric(server: &ServerHandle, name: &str) -> u64 {
    let api = server.admin_addr().expect("the admin API is on");
    sum(&scrape(api), name) as u64
}

/// `path` as a flag's or a TOML string's value.
fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
