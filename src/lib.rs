//! # ringcast: a live-video RTMP edge server
//!
//! Encoders publish a stream over RTMP; ringcast packages each message into
//! RTMP chunks once and fans the same bytes out to every player, shard per
//! core, on io_uring.
//!
//! ## Layers
//! Each depends only on those above it in this list:
//!
//! | module | owns | I/O |
//! |---|---|---|
//! | [`limits`] | every bound and default, with its reason | none |
//! | [`protocol`] | handshake, chunk codec, AMF0/AMF3, messages, commands, FLV inspection | none |
//! | [`session`] | one connection's RTMP state machine, server and client side | none |
//!
//! `protocol` and `session` are pure: bytes (and the caller's notion of time
//! and randomness) in, bytes and events out. No `async`, no sockets, no
//! clock; `tests/layering.rs` holds that line.

pub mod cli;
pub mod config;
pub mod fuzzing;
pub mod limits;
pub mod media;
pub mod protocol;
pub mod server;
pub mod session;
pub mod shard;
pub mod startup;
