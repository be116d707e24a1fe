//! # ringcast-web: playing live streams over HTTP, without I/O
//!
//! What a browser (or ffplay, VLC, mpegts.js) needs to play a live stream
//! that ringcast receives over RTMP, as pure functions over bytes:
//!
//! - [`request`]: a player's request head, parsed with `httparse` and
//!   checked (method, path, percent-encoding, size), into what to serve or
//!   the status to refuse it with;
//! - [`response`]: the response heads ringcast sends (the FLV stream, the
//!   WebSocket upgrade, errors), with CORS;
//! - [`websocket`]: RFC 6455 framing, server and client side (the load
//!   generator and the tests are the client);
//! - [`flv`]: the FLV file header an HTTP-FLV body starts with;
//! - [`object`]: response heads for objects served whole from memory (HLS
//!   playlists and media), with ranges, validators and keep-alive;
//! - [`page`]: the player page and the mpegts.js and hls.js it plays with,
//!   compiled in (`player/README.md` says where the scripts come from);
//! - [`client`]: the requests a player sends and the response heads it
//!   reads (the load generator and the tests are the players).
//!
//! Like `ringcast-rtmp`, this crate has no async runtime, socket or clock
//! in its dependency tree.

pub mod client;
pub mod flv;
pub mod object;
pub mod page;
pub mod request;
pub mod response;
pub mod websocket;
