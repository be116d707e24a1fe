//! What a hook is sent and what its answer means, in each family's words
//! (`access.hook_format`): ringcast's own JSON, SRS's `http_hooks` JSON,
//! or nginx-rtmp's `notify` form. Pure: an [`Event`] in, a body out; a
//! status, a `Location` and a body in, an [`Outcome`] out. The transport
//! is [`super::hooks`].
//!
//! References: SRS `trunk/src/app/srs_app_http_hooks.cpp` (the fields of
//! each `on_*` and `SrsHttpHooks::do_post`, which reads the answer);
//! nginx-rtmp `ngx_rtmp_notify_module.c` (the `*_create` functions build
//! each form, `ngx_rtmp_notify_parse_http_retcode` reads the answer) and
//! `ngx_rtmp_netcall_http_format_session` (the fields every form but
//! `connect` starts with).

use std::borrow::Cow;
use std::net::SocketAddr;

use bytes::Bytes;
use http::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::HookFormat;
use crate::limits;
use crate::session::Quoted;

/// What happened, in ringcast's terms; each format words it its own way.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    pub kind: Kind,
    /// The client: `shard-serial`, as the admin API names it (and kicks
    /// it by).
    pub client_id: String,
    /// The client's address and port.
    pub client: SocketAddr,
    pub app: &'a str,
    /// The stream name without its query; `None` for a connect or a close.
    pub stream: Option<&'a str>,
    /// The query the client sent, as sent: the stream name's for publish
    /// and play, the app's and tcUrl's for connect and close.
    pub args: &'a str,
    pub tc_url: Option<&'a str>,
    /// How the client came: `rtmp`, `http-flv`, `ws-flv` or `hls`.
    pub protocol: &'static str,
    /// The connection's RTMP epoch (its shard clock at accept, ms): what
    /// nginx-rtmp sends as `epoch`.
    pub epoch: u32,
}

/// A recording file is complete: what `on_record_done` is told. Not an
/// [`Event`]: no client need be behind it (a pull's recording has none).
#[derive(Clone, Debug)]
pub struct RecordDone<'a> {
    pub app: &'a str,
    pub stream: &'a str,
    /// The file, as the recording named it.
    pub path: &'a str,
    /// `flv` or `mp4`.
    pub format: &'static str,
    pub duration_ms: u64,
    pub bytes: u64,
    /// The publisher, as the other hooks name it; `None` for a pull.
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Which event, with what only it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Publish,
    Play,
    PublishDone,
    PlayDone,
    /// A publish or a play ended (nginx-rtmp's `on_done`, beside the two
    /// above).
    Done {
        publishing: bool,
    },
    /// Still publishing or playing, `seconds` after it began.
    Update {
        publishing: bool,
        seconds: u64,
    },
    /// The connection ended, having read and written this many bytes.
    Close {
        bytes_in: u64,
        bytes_out: u64,
    },
}

impl Kind {
    /// The configuration key of the hook this event goes to.
    pub fn hook_name(self) -> &'static str {
        match self {
            Kind::Connect => "on_connect",
            Kind::Publish => "on_publish",
            Kind::Play => "on_play",
            Kind::PublishDone => "on_publish_done",
            Kind::PlayDone => "on_play_done",
            Kind::Done { .. } => "on_done",
            Kind::Update { .. } => "on_update",
            Kind::Close { .. } => "on_close",
        }
    }

    /// `publish` or `play` for the events about one of them.
    fn role(self) -> Option<&'static str> {
        match self {
            Kind::Publish | Kind::PublishDone => Some("publish"),
            Kind::Play | Kind::PlayDone => Some("play"),
            Kind::Done { publishing } | Kind::Update { publishing, .. } => {
                Some(if publishing { "publish" } else { "play" })
            }
            Kind::Connect | Kind::Close { .. } => None,
        }
    }
}

/// Who this server is, for SRS's `server_id` and `service_id`: the
/// machine, and this run of the process.
#[derive(Clone, Debug)]
pub struct ServerIds {
    pub server_id: String,
    pub service_id: String,
    /// The server's working directory, for SRS's `on_dvr` `cwd`.
    pub cwd: String,
}

/// A request body and its media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

/// How a hook call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// A redirect to this stream name.
    Renamed(String),
    /// Answered with a refusal: how (`answered 403`, `answered 200 with
    /// {"code":403}`).
    Refused(String),
    /// No usable answer: why.
    Failed(String),
}

/// The body `event` is POSTed with in `format`.
pub fn encode(format: HookFormat, event: &Event<'_>, ids: &ServerIds) -> Body {
    match format {
        HookFormat::Ringcast => json_body(&ringcast(event)),
        HookFormat::Srs => json_body(&srs(event, ids)),
        HookFormat::Nginx => Body {
            content_type: "application/x-www-form-urlencoded",
            bytes: Bytes::from(nginx(event)),
        },
    }
}

/// The meaning of an answer in `format`; `body` is `None` when it could
/// not be read whole within [`limits::HOOK_ANSWER_BYTES_MAX`].
pub fn read_answer(
    format: HookFormat,
    status: StatusCode,
    location: Option<&str>,
    body: Option<&[u8]>,
) -> Outcome {
    match format {
        HookFormat::Ringcast => {
            if status.is_success() {
                return Outcome::Allowed;
            }
            match location
                .filter(|_| status.is_redirection())
                .and_then(redirect_name)
            {
                Some(name) => Outcome::Renamed(name),
                None => Outcome::Refused(format!("answered {}", status.as_u16())),
            }
        }
        // Any 2xx goes on; a 3xx renames to its Location, or goes on
        // without one (ngx_rtmp_notify_publish_handle: `rc <= 0` → next).
        HookFormat::Nginx if status.is_success() => Outcome::Allowed,
        HookFormat::Nginx if status.is_redirection() => location
            .and_then(redirect_name)
            .map_or(Outcome::Allowed, Outcome::Renamed),
        HookFormat::Nginx => Outcome::Refused(format!("answered {}", status.as_u16())),
        HookFormat::Srs => srs_answer(status, body),
    }
}

/// The body `on_record_done` is POSTed with in `format`: ringcast's JSON,
/// SRS's `on_dvr`, or nginx-rtmp's `record_done` form.
pub fn encode_record_done(format: HookFormat, done: &RecordDone<'_>, ids: &ServerIds) -> Body {
    match format {
        HookFormat::Ringcast => json_body(&RingcastRecordDone {
            action: "on_record_done",
            done,
        }),
        HookFormat::Srs => json_body(&srs_dvr(done, ids)),
        HookFormat::Nginx => Body {
            content_type: "application/x-www-form-urlencoded",
            bytes: Bytes::from(nginx_record_done(done)),
        },
    }
}

/// ringcast's `on_record_done` body: the action, then the file's fields.
#[derive(Serialize)]
struct RingcastRecordDone<'a> {
    action: &'static str,
    #[serde(flatten)]
    done: &'a RecordDone<'a>,
}

impl Serialize for RecordDone<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("app", self.app)?;
        map.serialize_entry("stream", self.stream)?;
        map.serialize_entry("path", self.path)?;
        map.serialize_entry("format", self.format)?;
        map.serialize_entry("duration_ms", &self.duration_ms)?;
        map.serialize_entry("bytes", &self.bytes)?;
        if let Some(client_id) = self.client_id {
            map.serialize_entry("client_id", client_id)?;
        }
        if let Some(ip) = self.ip {
            map.serialize_entry("ip", ip)?;
        }
        map.end()
    }
}

/// SRS's `on_dvr` (`SrsHttpHooks::on_dvr`), in its order. ringcast knows
/// no tcUrl or query for a recording: both are empty, as are `client_id`
/// and `ip` for a pull's.
fn srs_dvr(done: &RecordDone<'_>, ids: &ServerIds) -> Map<String, Value> {
    let mut body = Map::new();
    let mut set = |key: &str, value: Value| {
        body.insert(key.to_owned(), value);
    };
    set("server_id", json!(ids.server_id));
    set("service_id", json!(ids.service_id));
    set("action", json!("on_dvr"));
    set("client_id", json!(done.client_id.unwrap_or_default()));
    set("ip", json!(done.ip.unwrap_or_default()));
    set("vhost", json!(SRS_VHOST));
    set("app", json!(done.app));
    set("tcUrl", json!(""));
    set("stream", json!(done.stream));
    set("param", json!(""));
    set("cwd", json!(ids.cwd));
    set("file", json!(done.path));
    set(
        "stream_url",
        json!(format!("/{}/{}", done.app, done.stream)),
    );
    set("stream_id", json!(format!("{}/{}", done.app, done.stream)));
    body
}

/// nginx-rtmp's `record_done` form (ngx_rtmp_notify_record_done_create):
/// the session fields, then `call`, `recorder` (ringcast's recordings have
/// no name: nginx-rtmp's default recorder, ``), `name` and `path`.
fn nginx_record_done(done: &RecordDone<'_>) -> String {
    let mut form = Form::default();
    form.field("app", done.app)
        .field("flashver", "")
        .field("swfurl", "")
        .field("tcurl", "")
        .field("pageurl", "")
        .field("addr", done.ip.unwrap_or_default())
        .field("clientid", done.client_id.unwrap_or_default())
        .field("call", "record_done")
        .field("recorder", "")
        .field("name", done.stream)
        .field("path", done.path);
    form.0
}

fn json_body(value: &impl Serialize) -> Body {
    Body {
        content_type: "application/json",
        // A struct or map of strings and numbers always serializes.
        bytes: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    }
}

/// ringcast's own body: the names SRS uses for what both send, `args`
/// for the query, and what SRS has no field for.
#[derive(Serialize)]
struct Ringcast<'a> {
    action: &'static str,
    client_id: &'a str,
    client: SocketAddr,
    ip: String,
    app: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a str>,
    args: &'a str,
    #[serde(rename = "tcUrl", skip_serializing_if = "Option::is_none")]
    tc_url: Option<&'a str>,
    protocol: &'static str,
    /// `publish` or `play`, for `on_done` and `on_update`.
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_out: Option<u64>,
}

fn ringcast<'a>(event: &'a Event<'a>) -> Ringcast<'a> {
    let (seconds, bytes) = match event.kind {
        Kind::Update { seconds, .. } => (Some(seconds), None),
        Kind::Close {
            bytes_in,
            bytes_out,
        } => (None, Some((bytes_in, bytes_out))),
        _ => (None, None),
    };
    let role = match event.kind {
        Kind::Done { .. } | Kind::Update { .. } => event.kind.role(),
        _ => None,
    };
    Ringcast {
        action: event.kind.hook_name(),
        client_id: &event.client_id,
        client: event.client,
        ip: ip(event),
        app: event.app,
        stream: event.stream,
        args: event.args,
        tc_url: event.tc_url,
        protocol: event.protocol,
        role,
        seconds,
        bytes_in: bytes.map(|(read, _)| read),
        bytes_out: bytes.map(|(_, written)| written),
    }
}

/// SRS's vhost for clients that name none: ringcast has no vhosts.
const SRS_VHOST: &str = "__defaultVhost__";

/// SRS's body for the event: the fields `SrsHttpHooks::on_*` set, in its
/// order. `on_done` and `on_update` are not SRS's; they carry the fields
/// of `on_unpublish` and `on_stop`.
fn srs(event: &Event<'_>, ids: &ServerIds) -> Map<String, Value> {
    let action = match event.kind {
        Kind::PublishDone => "on_unpublish",
        Kind::PlayDone => "on_stop",
        kind => kind.hook_name(),
    };
    let mut body = Map::new();
    let mut set = |key: &str, value: Value| {
        body.insert(key.to_owned(), value);
    };
    set("server_id", json!(ids.server_id));
    set("service_id", json!(ids.service_id));
    set("action", json!(action));
    set("client_id", json!(event.client_id));
    set("ip", json!(ip(event)));
    set("vhost", json!(SRS_VHOST));
    set("app", json!(event.app));
    // SRS's `param` is the query with its `?`.
    let param = match event.args {
        "" => String::new(),
        args => format!("?{args}"),
    };
    let tc_url = json!(event.tc_url.unwrap_or_default());
    match event.kind {
        Kind::Close {
            bytes_in,
            bytes_out,
        } => {
            set("send_bytes", json!(bytes_out));
            set("recv_bytes", json!(bytes_in));
        }
        Kind::Connect => {
            set("stream", json!(""));
            set("param", json!(param));
            set("tcUrl", tc_url);
            set("pageUrl", json!(""));
        }
        kind => {
            let stream = event.stream.unwrap_or_default();
            set("tcUrl", tc_url);
            set("stream", json!(stream));
            set("param", json!(param));
            if kind == Kind::Play {
                set("pageUrl", json!(""));
            }
            // SRS's stream URL without a vhost, and as the stream's id
            // ringcast's own name for it.
            set("stream_url", json!(format!("/{}/{stream}", event.app)));
            set("stream_id", json!(format!("{}/{stream}", event.app)));
        }
    }
    body
}

/// What nginx-rtmp escapes in a form value (`NGX_ESCAPE_ARGS` and more):
/// all but the unreserved characters, so any decoder reads it back.
const FORM_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// nginx-rtmp's form for the event: the session fields, then the call's
/// own, then the client's query appended as sent (as nginx-rtmp does).
fn nginx(event: &Event<'_>) -> String {
    let mut form = Form::default();
    let addr = ip(event);
    let tc_url = event.tc_url.unwrap_or_default();
    if event.kind == Kind::Connect {
        // ngx_rtmp_notify_connect_create builds its own: no clientid,
        // an epoch.
        form.field("app", event.app)
            .field("flashver", "")
            .field("swfurl", "")
            .field("tcurl", tc_url)
            .field("pageurl", "")
            .field("addr", &addr)
            .field("epoch", &event.epoch.to_string())
            .field("call", "connect");
    } else {
        form.field("app", event.app)
            .field("flashver", "")
            .field("swfurl", "")
            .field("tcurl", tc_url)
            .field("pageurl", "")
            .field("addr", &addr)
            .field("clientid", &event.client_id);
        let name = event.stream.unwrap_or_default();
        match event.kind {
            Kind::Publish => {
                form.field("call", "publish")
                    .field("name", name)
                    .field("type", "live");
            }
            Kind::Play => {
                form.field("call", "play").field("name", name);
            }
            Kind::PublishDone | Kind::PlayDone | Kind::Done { .. } => {
                let call = match event.kind {
                    Kind::PublishDone => "publish_done",
                    Kind::PlayDone => "play_done",
                    _ => "done",
                };
                form.field("call", call).field("name", name);
            }
            Kind::Update { seconds, .. } => {
                let call = match event.kind.role() {
                    Some("publish") => "update_publish",
                    _ => "update_play",
                };
                form.field("call", call)
                    .field("time", &seconds.to_string())
                    .field("name", name);
            }
            Kind::Close { .. } => {
                form.field("call", "disconnect").field("app", event.app);
            }
            Kind::Connect => {}
        }
    }
    if !event.args.is_empty() {
        form.0.push('&');
        form.0.push_str(event.args);
    }
    form.0
}

/// An `application/x-www-form-urlencoded` body being written.
#[derive(Default)]
struct Form(String);

impl Form {
    fn field(&mut self, name: &str, value: &str) -> &mut Form {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(name);
        self.0.push('=');
        self.0
            .extend(utf8_percent_encode(value, FORM_VALUE).map(Cow::from));
        self
    }
}

/// SRS's `do_post`: 200 or 201, and a body that is `0` or a JSON object
/// whose integer `code` is 0. The body is trimmed first (SRS compares it
/// exactly; a service that prints `0\n` means the same).
fn srs_answer(status: StatusCode, body: Option<&[u8]>) -> Outcome {
    let code = status.as_u16();
    if !matches!(code, 200 | 201) {
        return Outcome::Refused(format!("answered {code}"));
    }
    let Some(body) = body else {
        return Outcome::Failed(format!(
            "answered {code} with a body past {} bytes",
            limits::HOOK_ANSWER_BYTES_MAX
        ));
    };
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text == "0" {
        return Outcome::Allowed;
    }
    // Cut and quoted: it goes into a log line.
    let quoted = || format!("{:?}", Quoted(text).to_string());
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => match object.get("code").and_then(Value::as_i64) {
            Some(0) => Outcome::Allowed,
            Some(other) => Outcome::Refused(format!("answered {code} with code {other}")),
            None => Outcome::Refused(format!("answered {code} with {} (no code)", quoted())),
        },
        _ => Outcome::Refused(format!("answered {code} with {}", quoted())),
    }
}

/// The client's address alone (an IPv4 peer on an IPv6 socket as IPv4).
fn ip(event: &Event<'_>) -> String {
    event.client.ip().to_canonical().to_string()
}

/// The stream name a `Location` gives: its last path segment without a
/// query, percent-decoded (`rtmp://host/live/other?x=1`, `/live/other` and
/// `other` all give `other`). nginx-rtmp would take a `rtmp://` location
/// as a relay to start and any other whole as the name; ringcast renames
/// in both cases, to the last segment.
fn redirect_name(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    let segment = path.trim_end_matches('/').rsplit('/').next()?;
    let name = percent_decode_str(segment).decode_utf8().ok()?;
    let usable = !name.is_empty() && name.len() <= limits::NAME_BYTES_MAX;
    usable.then(|| name.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> ServerIds {
        ServerIds {
            server_id: "edge-1".into(),
            service_id: "a1b2".into(),
            cwd: "/srv".into(),
        }
    }

    fn record_done(client: bool) -> RecordDone<'static> {
        RecordDone {
            app: "live",
            stream: "cam",
            path: "rec/live/cam 1.flv",
            format: "flv",
            duration_ms: 6001,
            bytes: 711_758,
            client_id: client.then_some("1-4"),
            ip: client.then_some("192.0.2.7"),
        }
    }

    fn record_done_body(format: HookFormat, client: bool) -> Body {
        encode_record_done(format, &record_done(client), &ids())
    }

    #[test]
    fn ringcast_record_done_is_the_recording_json() {
        let body = record_done_body(HookFormat::Ringcast, true);
        assert_eq!(body.content_type, "application/json");
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            value,
            json!({
                "action": "on_record_done", "app": "live", "stream": "cam",
                "path": "rec/live/cam 1.flv", "format": "flv", "duration_ms": 6001,
                "bytes": 711_758, "client_id": "1-4", "ip": "192.0.2.7"
            })
        );
        let pull = record_done_body(HookFormat::Ringcast, false);
        let value: Value = serde_json::from_slice(&pull.bytes).unwrap();
        assert!(value.get("client_id").is_none() && value.get("ip").is_none());
    }

    #[test]
    fn srs_record_done_is_on_dvr() {
        let body = record_done_body(HookFormat::Srs, true);
        assert_eq!(body.content_type, "application/json");
        let value: Value = serde_json::from_slice(&body.bytes).unwrap();
        assert_eq!(
            value,
            json!({
                "server_id": "edge-1", "service_id": "a1b2", "action": "on_dvr",
                "client_id": "1-4", "ip": "192.0.2.7", "vhost": "__defaultVhost__",
                "app": "live", "tcUrl": "", "stream": "cam", "param": "",
                "cwd": "/srv", "file": "rec/live/cam 1.flv",
                "stream_url": "/live/cam", "stream_id": "live/cam"
            })
        );
        let pull = record_done_body(HookFormat::Srs, false);
        let value: Value = serde_json::from_slice(&pull.bytes).unwrap();
        assert_eq!(
            (&value["client_id"], &value["ip"]),
            (&json!(""), &json!(""))
        );
    }

    #[test]
    fn nginx_record_done_is_its_form() {
        let body = record_done_body(HookFormat::Nginx, true);
        assert_eq!(body.content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(body.bytes.to_vec()).unwrap(),
            "app=live&flashver=&swfurl=&tcurl=&pageurl=&addr=192.0.2.7&clientid=1-4\
             &call=record_done&recorder=&name=cam&path=rec%2Flive%2Fcam%201.flv"
        );
        let pull = record_done_body(HookFormat::Nginx, false);
        assert!(
            String::from_utf8(pull.bytes.to_vec())
                .unwrap()
                .contains("&addr=&clientid=&call=record_done&")
        );
    }

    fn event(kind: Kind) -> Event<'static> {
        let stream = match kind {
            Kind::Connect | Kind::Close { .. } => None,
            _ => Some("cam"),
        };
        Event {
            kind,
            client_id: "0-3".into(),
            client: "192.0.2.1:5000".parse().unwrap(),
            app: "live",
            stream,
            args: "key=x&t=1",
            tc_url: Some("rtmp://h/live"),
            protocol: "rtmp",
            epoch: 77,
        }
    }

    fn json(format: HookFormat, kind: Kind) -> Value {
        let body = encode(format, &event(kind), &ids());
        assert_eq!(body.content_type, "application/json");
        serde_json::from_slice(&body.bytes).unwrap()
    }

    fn form(kind: Kind) -> String {
        let body = encode(HookFormat::Nginx, &event(kind), &ids());
        assert_eq!(body.content_type, "application/x-www-form-urlencoded");
        String::from_utf8(body.bytes.to_vec()).unwrap()
    }

    #[test]
    fn ringcast_events_are_unchanged_and_new_ones_say_what_they_add() {
        assert_eq!(
            json(HookFormat::Ringcast, Kind::Publish),
            json!({
                "action": "on_publish", "client_id": "0-3", "client": "192.0.2.1:5000",
                "ip": "192.0.2.1", "app": "live", "stream": "cam", "args": "key=x&t=1",
                "tcUrl": "rtmp://h/live", "protocol": "rtmp"
            })
        );
        let update = json(
            HookFormat::Ringcast,
            Kind::Update {
                publishing: false,
                seconds: 30,
            },
        );
        assert_eq!(
            (&update["action"], &update["role"]),
            (&json!("on_update"), &json!("play"))
        );
        assert_eq!(update["seconds"], 30);
        let close = json(
            HookFormat::Ringcast,
            Kind::Close {
                bytes_in: 5,
                bytes_out: 9,
            },
        );
        assert_eq!(close["action"], "on_close");
        assert_eq!(
            (&close["bytes_in"], &close["bytes_out"]),
            (&json!(5), &json!(9))
        );
        assert!(close.get("stream").is_none());
    }

    #[test]
    fn srs_events_carry_srs_fields_and_names() {
        assert_eq!(
            json(HookFormat::Srs, Kind::Publish),
            json!({
                "server_id": "edge-1", "service_id": "a1b2", "action": "on_publish",
                "client_id": "0-3", "ip": "192.0.2.1", "vhost": "__defaultVhost__",
                "app": "live", "tcUrl": "rtmp://h/live", "stream": "cam",
                "param": "?key=x&t=1", "stream_url": "/live/cam", "stream_id": "live/cam"
            })
        );
        assert_eq!(
            json(HookFormat::Srs, Kind::PublishDone)["action"],
            "on_unpublish"
        );
        let stop = json(HookFormat::Srs, Kind::PlayDone);
        assert_eq!(stop["action"], "on_stop");
        assert!(stop.get("pageUrl").is_none());
        assert_eq!(json(HookFormat::Srs, Kind::Play)["pageUrl"], "");
        let connect = json(HookFormat::Srs, Kind::Connect);
        assert_eq!(
            (&connect["stream"], &connect["param"]),
            (&json!(""), &json!("?key=x&t=1"))
        );
        assert_eq!(
            json(
                HookFormat::Srs,
                Kind::Close {
                    bytes_in: 5,
                    bytes_out: 9
                }
            ),
            json!({
                "server_id": "edge-1", "service_id": "a1b2", "action": "on_close",
                "client_id": "0-3", "ip": "192.0.2.1", "vhost": "__defaultVhost__",
                "app": "live", "send_bytes": 9, "recv_bytes": 5
            })
        );
    }

    #[test]
    fn nginx_events_are_nginx_rtmp_forms() {
        let session = "app=live&flashver=&swfurl=&tcurl=rtmp%3A%2F%2Fh%2Flive&pageurl=\
                       &addr=192.0.2.1&clientid=0-3";
        assert_eq!(
            form(Kind::Connect),
            "app=live&flashver=&swfurl=&tcurl=rtmp%3A%2F%2Fh%2Flive&pageurl=\
             &addr=192.0.2.1&epoch=77&call=connect&key=x&t=1"
        );
        assert_eq!(
            form(Kind::Publish),
            format!("{session}&call=publish&name=cam&type=live&key=x&t=1")
        );
        assert_eq!(
            form(Kind::Play),
            format!("{session}&call=play&name=cam&key=x&t=1")
        );
        assert_eq!(
            form(Kind::PublishDone),
            format!("{session}&call=publish_done&name=cam&key=x&t=1")
        );
        assert_eq!(
            form(Kind::Done { publishing: false }),
            format!("{session}&call=done&name=cam&key=x&t=1")
        );
        assert_eq!(
            form(Kind::Update {
                publishing: true,
                seconds: 60
            }),
            format!("{session}&call=update_publish&time=60&name=cam&key=x&t=1")
        );
        assert_eq!(
            form(Kind::Close {
                bytes_in: 1,
                bytes_out: 2
            }),
            format!("{session}&call=disconnect&app=live&key=x&t=1")
        );
    }

    #[test]
    fn form_values_are_escaped() {
        let mut form = Form::default();
        form.field("name", "a b&c=d/é~");
        assert_eq!(form.0, "name=a%20b%26c%3Dd%2F%C3%A9~");
    }

    #[test]
    fn ringcast_answers_allow_rename_or_refuse() {
        let read = |status: u16, location| {
            let status = StatusCode::from_u16(status).unwrap();
            read_answer(HookFormat::Ringcast, status, location, Some(b""))
        };
        assert_eq!(read(200, None), Outcome::Allowed);
        assert_eq!(read(204, None), Outcome::Allowed);
        assert_eq!(
            read(302, Some("rtmp://origin/live/backup?x=1")),
            Outcome::Renamed("backup".into())
        );
        assert_eq!(
            read(303, Some("/live/other/")),
            Outcome::Renamed("other".into())
        );
        assert_eq!(
            read(302, Some("my%20cam")),
            Outcome::Renamed("my cam".into())
        );
        assert_eq!(read(302, None), Outcome::Refused("answered 302".into()));
        assert_eq!(
            read(302, Some("/")),
            Outcome::Refused("answered 302".into())
        );
        assert_eq!(read(403, None), Outcome::Refused("answered 403".into()));
        assert_eq!(
            read(500, Some("x")),
            Outcome::Refused("answered 500".into())
        );
    }

    #[test]
    fn nginx_answers_follow_its_2xx_and_3xx() {
        let read = |status: u16, location| {
            let status = StatusCode::from_u16(status).unwrap();
            read_answer(HookFormat::Nginx, status, location, None)
        };
        assert_eq!(read(201, None), Outcome::Allowed);
        assert_eq!(
            read(302, None),
            Outcome::Allowed,
            "a 3xx without a location goes on"
        );
        assert_eq!(read(301, Some("other")), Outcome::Renamed("other".into()));
        assert_eq!(read(404, None), Outcome::Refused("answered 404".into()));
    }

    #[test]
    fn srs_answers_allow_only_code_zero() {
        let read = |status: u16, body: &[u8]| {
            let status = StatusCode::from_u16(status).unwrap();
            read_answer(HookFormat::Srs, status, None, Some(body))
        };
        assert_eq!(read(200, b"0"), Outcome::Allowed);
        assert_eq!(read(200, b"0\n"), Outcome::Allowed);
        assert_eq!(read(201, br#"{"code": 0, "data": null}"#), Outcome::Allowed);
        assert_eq!(
            read(200, br#"{"code": 403}"#),
            Outcome::Refused("answered 200 with code 403".into())
        );
        assert_eq!(
            read(200, b""),
            Outcome::Refused("answered 200 with \"\"".into())
        );
        assert_eq!(
            read(200, b"1"),
            Outcome::Refused("answered 200 with \"1\"".into())
        );
        assert_eq!(
            read(200, br#"{"ok": true}"#),
            Outcome::Refused(r#"answered 200 with "{\"ok\": true}" (no code)"#.into())
        );
        assert_eq!(read(204, b"0"), Outcome::Refused("answered 204".into()));
        assert_eq!(read(302, b"0"), Outcome::Refused("answered 302".into()));
        assert!(matches!(
            read_answer(HookFormat::Srs, StatusCode::OK, None, None),
            Outcome::Failed(_)
        ));
    }
}
