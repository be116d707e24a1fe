//! HTTP-FLV and WebSocket-FLV players end to end: ffprobe, ffmpeg and
//! ffplay read an ffmpeg publish over HTTP; ffmpeg 9 reads HEVC back over
//! enhanced FLV; a WebSocket client reads the FLV in binary frames and is
//! answered on its control frames; bad requests get their status and are
//! closed while others play; keys, address lists and hooks guard HTTP
//! players; an edge pulls for them; twenty of them on four shards get
//! every frame; the admin API counts and kicks them and a reload keys new
//! ones out; the player page is served; a ping flood is cut off and TCP
//! keepalive finds vanished players. The players and the FLV reading are
//! in `common::web`; the tests by theme in `tools`, `ws`, `requests`, `rules` and
//! `delivery`. These tests need ffmpeg
//! (`apt-get install ffmpeg`) and ffmpeg 9 (`pip install imageio-ffmpeg`);
//! without them they fail, never skip.
// Tests and benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../common/mod.rs"]
mod common;
mod delivery;
mod requests;
mod rules;
mod tools;
mod ws;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::admin::{self, get_json, request, scrape};
use common::feeder::Feeder;
use common::ffmpeg::{
    assert_decodes_hevc_and_opus, assert_probes_h264_and_aac, ffmpeg9, finish, publish,
    publish_hevc, run_bounded, tool, wait_for_frames_in,
};
use common::hooks::{Answer, HookService};
use common::media::{aac_header, avc_header, frame_number, video};
use common::web::{
    MASK, Response, WebPlayer, assert_no_gap_after_first_keyframe, exchange_head, is_timeout,
    read_rest,
};
use common::{Client, media, players, start_server, wait_until};
use ringcast::config::Network;
use ringcast::protocol::url::RtmpUrl;
use ringcast::server::ServerHandle;
use ringcast::session::{Media, MediaKind};
use ringcast_web::client::{ResponseHead, get_request};
use ringcast_web::websocket::{self, Opcode, client_frame, client_key, close};
use serde_json::Value;

/// Sends `request` as is and reads the whole answer: its status and body.
/// The server must close the connection after it.
fn answer_to(addr: SocketAddr, request: &[u8]) -> Response {
    let (socket, head, rest) = exchange_head(addr, request);
    read_rest(socket, &head, rest)
}

/// A file from the HTTP listener: the head and the whole body.
fn fetch(addr: SocketAddr, path: &str) -> (ResponseHead, String) {
    let request = get_request("GET", &addr.to_string(), path);
    let (socket, head, rest) = exchange_head(addr, request.as_bytes());
    let response = read_rest(socket, &head, rest);
    (head, response.body)
}

fn http(server: &ServerHandle) -> SocketAddr {
    server.http_addr().expect("the HTTP listener is on")
}

fn rtmp(server: &ServerHandle) -> SocketAddr {
    server.local_addrs()[0]
}
