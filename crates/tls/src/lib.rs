//! TLS for ringcast: RTMPS, HTTPS-FLV and WSS players and publishers on
//! the shards, and `rtmps://` relays, with rustls (aws-lc-rs's crypto, no
//! OpenSSL).
//!
//! - [`record`]: one connection's records over owned buffers, for
//!   io_uring sockets (the shard's connections, the relay client).
//! - [`certs`]: the server's certificates (checked when loaded, chosen by
//!   SNI) and the roots relays verify their peers against; for the load
//!   generator's `--tls-insecure` alone, a client that takes any
//!   certificate ([`ClientTls::insecure`]).
//! - [`reasons`]: why a handshake failed, in words for a log line.
//!
//! Where the kernel offers TLS offload (`tls` in
//! `/proc/sys/net/ipv4/tcp_available_ulp`) it is not used yet: records
//! are sealed in userspace everywhere (`ringcast doctor` says which the
//! kernel offers).

pub mod certs;
pub mod reasons;
pub mod record;
#[cfg(test)]
mod testing;

pub use certs::{CertError, CertFiles, ClientTls, ServerTls, server_name};
pub use record::{Received, Tls, TlsError};
