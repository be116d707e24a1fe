//! # ringcast-rtmp: RTMP and live media without I/O
//!
//! The pure layers of ringcast, below everything that does I/O: bytes,
//! time and randomness in, bytes and events out. No `async`, no sockets,
//! no clock; no async runtime is even in this crate's dependency tree.
//!
//! | module | owns |
//! |---|---|
//! | [`limits`] | every bound and default, with its reason |
//! | [`protocol`] | handshake, chunk codec, AMF0/AMF3, messages, commands, URLs, FLV inspection |
//! | [`session`] | one connection's RTMP state machine, server and client side |
//! | [`media`] | frames packaged once, GOP cache, timestamp correction, outbound queues and the slow-player policy, write pacing |
//!
//! Each depends only on those above it in this list.

pub mod limits;
pub mod media;
pub mod protocol;
pub mod session;
