//! HTTP-FLV and WebSocket-FLV players on a shard: a connection accepted
//! on an HTTP listener reads one request, and either is answered at once
//! (the player page, a CORS preflight, `HEAD`, a refusal) or becomes a
//! player of a stream like an RTMP one: through the door (keys as
//! `?key=`, address lists, `on_play`), then the router with its
//! [`Format`]. The response head goes out with the player's first frames
//! (the router's start), so a stream that never comes is still answered
//! `404` after `http.play_wait_ms`.
//!
//! After the request a player only listens: an HTTP-FLV player's input is
//! read and dropped (bounded), a WebSocket player's frames are decoded
//! (pings answered, a close answered and the connection closed, anything
//! over [`limits::WEBSOCKET_MESSAGE_BYTES_MAX`] closed with 1009).

use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use ringcast_web::request::{self, Method, Refusal, Request, Upgrade};
use ringcast_web::response::{self, Cors};
use ringcast_web::websocket::{self, Frames, Opcode};

use super::connection::{CloseReason, Conn};
use super::logs::peer_line;
use super::stats::Protocol;
use super::{Shard, hls};
use crate::access::{Action as Door, Verdict};
use crate::limits;
use crate::media::{CANONICAL_STREAM_ID, StreamKey};
use crate::router::{Event, Format};
use crate::session::Quoted;

/// An HTTP connection's state.
#[derive(Debug, Default)]
pub struct WebPlayer {
    /// How the stream goes out, once a play was asked for.
    transport: Option<Transport>,
    /// The response head went out (with the first frames, or a refusal).
    answered: bool,
    /// Its requests are for HLS objects.
    pub(super) hls: bool,
}

#[derive(Debug)]
enum Transport {
    Flv,
    WebSocket(Upgrade),
}

/// What a request's path names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// `/{app}/{stream}.flv`: the app may hold slashes, the stream not.
    Stream {
        app: &'a str,
        stream: &'a str,
    },
    /// A file of the player page, by its name under the page's path.
    Page(&'a str),
    Nothing,
}

fn route<'a>(path: &'a str, player_page: Option<&str>) -> Target<'a> {
    if let Some(name) = player_page.and_then(|page| path.strip_prefix(page)) {
        if !name.contains('/') {
            return Target::Page(name);
        }
    }
    let stream = path
        .strip_suffix(".flv")
        .and_then(|path| path.strip_prefix('/'))
        .and_then(|path| path.rsplit_once('/'));
    match stream {
        Some((app, stream))
            if !app.is_empty() && !stream.is_empty() && !app.split('/').any(str::is_empty) =>
        {
            Target::Stream { app, stream }
        }
        _ => Target::Nothing,
    }
}

impl WebPlayer {
    /// What it speaks.
    pub fn protocol(&self) -> Protocol {
        if self.hls {
            return Protocol::Hls;
        }
        match self.transport {
            Some(Transport::WebSocket(_)) => Protocol::WsFlv,
            Some(Transport::Flv) | None => Protocol::HttpFlv,
        }
    }

    /// The format its frames take.
    fn format(&self) -> Format {
        match self.transport {
            Some(Transport::WebSocket(_)) => Format::WebSocketFlv,
            Some(Transport::Flv) | None => Format::Flv,
        }
    }
}

impl Conn {
    /// The player starts: its response head goes before the first frames.
    pub(super) fn start_web_response(&self, cors: Cors<'_>) {
        let Some(mut player) = self.web() else {
            return;
        };
        if std::mem::replace(&mut player.answered, true) {
            return;
        }
        let head = match &player.transport {
            Some(Transport::WebSocket(upgrade)) => {
                response::switching_protocols(&upgrade.accept, upgrade.protocol.as_deref())
            }
            Some(Transport::Flv) | None => response::flv_stream(cors),
        };
        drop(player);
        self.send(head);
    }

    /// Answers `status` and closes, if nothing was answered yet; a player
    /// whose stream is already flowing is closed (its body ends).
    pub(super) fn refuse_web(&self, status: u16, why: &str, cors: Cors<'_>) {
        let answered = self
            .web()
            .is_none_or(|mut player| std::mem::replace(&mut player.answered, true));
        if !answered {
            self.send(response::error(status, why, cors));
        }
        self.close_after_flush(CloseReason::Answered);
    }
}

/// Reads an HTTP connection: its request, then what a player may send.
pub(super) async fn read_loop(shard: &Rc<Shard>, conn: &Rc<Conn>) -> CloseReason {
    let input = BytesMut::with_capacity(limits::READ_BUFFER_BYTES);
    let until = conn.accepted_ms + shard.config().timeouts.handshake.as_millis() as u64;
    let (request, input) = match read_request(shard, conn, input, until).await {
        Ok(read) => read,
        Err(reason) => return reason,
    };
    if request.websocket.is_none() && hls::route(&request.path).is_some() {
        return hls::serve(shard, conn, request, input).await;
    }
    let config = shard.config();
    let cors = config.http.cors();
    let page = config.http.player_page.as_deref();
    match (request.method, route(&request.path, page)) {
        (Method::Options, _) => conn.send(response::preflight(cors)),
        (_, Target::Page(name)) => match ringcast_web::page::asset(name) {
            Some(asset) => {
                conn.send(response::file(asset.content_type, asset.body.len(), cors));
                if request.method == Method::Get {
                    conn.send(bytes::Bytes::from_static(asset.body));
                }
            }
            None => conn.send(response::error(404, "no such file", cors)),
        },
        (Method::Head, Target::Stream { app, stream }) => {
            let key = StreamKey::new(app, stream);
            if shard.router.borrow().is_published(&key) {
                conn.send(response::flv_stream(cors));
            } else {
                conn.send(response::error(404, "no such stream", cors));
            }
        }
        (Method::Get, Target::Stream { app, stream }) => {
            let name = match request.query.as_str() {
                "" => stream.to_owned(),
                query => format!("{stream}?{query}"),
            };
            return play(shard, conn, app.to_owned(), name, request.websocket, input).await;
        }
        (_, Target::Nothing) => conn.send(response::error(404, "not found", cors)),
    }
    conn.close_after_flush(CloseReason::Answered);
    CloseReason::Answered
}

/// Reads until the request head is whole, until `until_ms` (shard
/// clock): the first request within the handshake timeout (a slow request
/// holds a connection no longer than a slow RTMP handshake), an HLS
/// connection's next ones within the idle timeout. A bad one is answered
/// and ends the connection.
pub(super) async fn read_request(
    shard: &Shard,
    conn: &Conn,
    mut input: BytesMut,
    until_ms: u64,
) -> Result<(Request, BytesMut), CloseReason> {
    let until_timeout = || match until_ms.checked_sub(shard.now_ms()) {
        Some(left) if left > 0 => Ok(Duration::from_millis(left)),
        _ => Err(CloseReason::HandshakeTimeout),
    };
    loop {
        match request::parse(&input) {
            Ok(Some(request)) => {
                let _ = input.split_to(request.len.min(input.len()));
                return Ok((request, input));
            }
            Ok(None) => {}
            Err(refusal) => return Err(refused(shard, conn, refusal)),
        }
        if input.capacity() - input.len() < limits::READ_BUFFER_BYTES / 4 {
            input.reserve(limits::READ_BUFFER_BYTES);
        }
        input = conn.read(shard, input, until_timeout).await?;
    }
}

/// A request refused for what it is: answered with its status, logged
/// within the connection's budget and counted.
fn refused(shard: &Shard, conn: &Conn, refusal: Refusal) -> CloseReason {
    shard.stats.http_refusals.add(1);
    let config = shard.config();
    let cors = config.http.cors();
    let why = refusal.to_string();
    peer_line!(INFO, shard, conn, shard = %shard.id, peer = %conn.peer, status = refusal.status(), why = %Quoted(&why), "http request refused");
    conn.send(response::error(refusal.status(), &why, cors));
    conn.close_after_flush(CloseReason::Answered);
    CloseReason::Answered
}

/// A GET of a stream: through the door, into the router; then waits for
/// the stream (at most `http.play_wait_ms`) while reading what the player
/// sends.
async fn play(
    shard: &Rc<Shard>,
    conn: &Rc<Conn>,
    app: String,
    name: String,
    upgrade: Option<Upgrade>,
    input: BytesMut,
) -> CloseReason {
    let websocket = upgrade.is_some();
    if let Some(mut player) = conn.web() {
        player.transport = Some(match upgrade {
            Some(upgrade) => Transport::WebSocket(upgrade),
            None => Transport::Flv,
        });
    }
    *conn.app.borrow_mut() = Some(app);
    let door_name = name.clone();
    shard.admit(conn, Door::Play, &door_name, move |shard, conn, verdict| {
        let config = shard.config();
        let cors = config.http.cors();
        match verdict {
            Verdict::Allow { rename } => {
                let name = rename.unwrap_or(name);
                let format = conn.web().map_or(Format::Flv, |player| player.format());
                shard.route(Event::Play {
                    conn: conn.id(),
                    // An HTTP player plays one stream, known to the router by the id an
                    // RTMP client's first `createStream` gets.
                    stream_id: CANONICAL_STREAM_ID,
                    key: Shard::stream_key(conn, &name),
                    name,
                    reset: false,
                    format,
                });
            }
            Verdict::Deny(_) => conn.refuse_web(403, "play denied", cors),
        }
    });
    let wait_until = conn.accepted_ms + shard.config().http.play_wait.as_millis() as u64;
    if websocket {
        listen_websocket(shard, conn, input, wait_until).await
    } else {
        listen_flv(shard, conn, input, wait_until).await
    }
}

/// The time a player may still wait for its stream, or, once that has
/// passed unanswered, its `404` (the play ends).
fn waiting(shard: &Shard, conn: &Conn, wait_until: u64) -> Result<Duration, CloseReason> {
    let answered = conn.web().is_none_or(|player| player.answered);
    let now = shard.now_ms();
    if answered {
        // Nothing to wait for: a read may block for ever.
        return Ok(Duration::from_secs(3600));
    }
    if now < wait_until {
        return Ok(Duration::from_millis(wait_until - now));
    }
    let config = shard.config();
    let cors = config.http.cors();
    shard.route(Event::StreamClosed {
        conn: conn.id(),
        stream_id: CANONICAL_STREAM_ID,
    });
    let stream = conn.app.borrow().clone().unwrap_or_default();
    peer_line!(INFO, shard, conn, shard = %shard.id, peer = %conn.peer, app = %Quoted(&stream), "http player: no such stream");
    conn.refuse_web(404, "no such stream", cors);
    Err(CloseReason::Answered)
}

/// An HTTP-FLV player should send nothing more: what it sends is read and
/// dropped, up to [`limits::HTTP_PLAYER_INPUT_BYTES_MAX`].
async fn listen_flv(
    shard: &Shard,
    conn: &Conn,
    mut input: BytesMut,
    wait_until: u64,
) -> CloseReason {
    let mut received = input.len();
    loop {
        input.clear();
        if !conn.is_open() {
            return CloseReason::PeerClosed;
        }
        input = match conn
            .read(shard, input, || waiting(shard, conn, wait_until))
            .await
        {
            Ok(input) => input,
            Err(reason) => return reason,
        };
        received += input.len();
        if received > limits::HTTP_PLAYER_INPUT_BYTES_MAX {
            shard.stats.http_refusals.add(1);
            peer_line!(INFO, shard, conn, shard = %shard.id, peer = %conn.peer, "http player sent too much after its request");
            return CloseReason::PeerClosed;
        }
    }
}

/// Reads a WebSocket player's frames: pings are answered, a close is
/// answered and ends the connection, data is dropped; a frame breaking
/// RFC 6455 or over the size bound is answered with a close that says
/// why. A player that pings and never reads its pongs is cut off once
/// they pass its queue's hopeless mark.
async fn listen_websocket(
    shard: &Shard,
    conn: &Conn,
    mut input: BytesMut,
    wait_until: u64,
) -> CloseReason {
    let mut frames = Frames::from_client(limits::WEBSOCKET_MESSAGE_BYTES_MAX);
    loop {
        loop {
            match frames.decode(&mut input) {
                Ok(Some(frame)) => match frame.opcode {
                    Opcode::Ping => {
                        conn.send(websocket::server_frame(Opcode::Pong, &frame.payload))
                    }
                    Opcode::Close => {
                        let code = websocket::parse_close(&frame.payload)
                            .ok()
                            .flatten()
                            .map_or(websocket::close::NORMAL, |(code, _)| code);
                        close_websocket(conn, code, "");
                        return CloseReason::PeerClosed;
                    }
                    _ => {}
                },
                Ok(None) => break,
                Err(error) => {
                    shard.stats.http_refusals.add(1);
                    let why = error.to_string();
                    peer_line!(INFO, shard, conn, shard = %shard.id, peer = %conn.peer, why = %Quoted(&why), "websocket player closed");
                    close_websocket(conn, error.close_code(), &why);
                    return CloseReason::PeerClosed;
                }
            }
        }
        if let Some(reason) = conn.cut_off_if_not_reading(shard) {
            return reason;
        }
        if !conn.is_open() {
            return CloseReason::PeerClosed;
        }
        if input.capacity() - input.len() < limits::READ_BUFFER_BYTES / 4 {
            input.reserve(limits::READ_BUFFER_BYTES);
        }
        input = match conn
            .read(shard, input, || waiting(shard, conn, wait_until))
            .await
        {
            Ok(input) => input,
            Err(reason) => return reason,
        };
    }
}

/// Sends a close frame (once the upgrade was answered; before it, there
/// is no WebSocket to close) and closes once it is out.
fn close_websocket(conn: &Conn, code: u16, reason: &str) {
    conn.send_websocket_close(code, reason);
    conn.close_after_flush(CloseReason::PeerClosed);
}

impl Conn {
    /// A WebSocket player is told the connection closes (RFC 6455 §5.5.1),
    /// if its upgrade was answered; anyone else is not.
    pub(super) fn send_websocket_close(&self, code: u16, reason: &str) {
        let upgraded = self.web().is_some_and(|player| {
            player.answered && matches!(player.transport, Some(Transport::WebSocket(_)))
        });
        if upgraded {
            let payload = websocket::close_payload(code, reason);
            self.send(websocket::server_frame(Opcode::Close, &payload));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_streams_page_files_or_nothing() {
        let page = Some("/");
        assert_eq!(
            route("/live/cam.flv", page),
            Target::Stream {
                app: "live",
                stream: "cam"
            }
        );
        assert_eq!(
            route("/a/b/cam.flv", None),
            Target::Stream {
                app: "a/b",
                stream: "cam"
            }
        );
        assert_eq!(route("/", page), Target::Page(""));
        assert_eq!(route("/mpegts.js", page), Target::Page("mpegts.js"));
        assert_eq!(route("/player/", Some("/player/")), Target::Page(""));
        assert_eq!(route("/", None), Target::Nothing);
        for path in [
            "/cam.flv",
            "/live/.flv",
            "//cam.flv",
            "/a//cam.flv",
            "/live/cam.mp4",
        ] {
            assert_eq!(route(path, None), Target::Nothing, "{path}");
        }
    }
}
