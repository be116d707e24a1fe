//! Typed commands (RTMP 1.0 §7.2) and data messages. The names and URLs
//! they carry are parsed in [`super::url`].
//!
//! A command is an AMF sequence: name, transaction id, command object, then
//! arguments. [`Command::from_values`] types the ones a live server and its
//! clients use; any other name decodes to [`Command::Call`] so a session can
//! answer `_error` instead of dying. A known command with missing or
//! wrong-typed arguments is a [`CommandError::BadArgument`] that still
//! carries the transaction id, for the same reason.

use super::MessageStreamId;
use super::amf::{Object, Value};

/// A command message.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Connect(Connect),
    CreateStream {
        transaction_id: f64,
    },
    ReleaseStream {
        transaction_id: f64,
        stream_name: String,
    },
    /// `FCPublish` (Flash Media Server's, sent by ffmpeg and OBS).
    FcPublish {
        transaction_id: f64,
        stream_name: String,
    },
    FcUnpublish {
        transaction_id: f64,
        stream_name: String,
    },
    Publish {
        transaction_id: f64,
        stream_name: String,
        publish_type: PublishType,
    },
    Play(Play),
    Play2 {
        transaction_id: f64,
        parameters: Value,
    },
    Pause {
        transaction_id: f64,
        pause: bool,
        position_ms: f64,
    },
    Seek {
        transaction_id: f64,
        position_ms: f64,
    },
    DeleteStream {
        transaction_id: f64,
        stream_id: MessageStreamId,
    },
    CloseStream {
        transaction_id: f64,
    },
    ReceiveAudio {
        transaction_id: f64,
        enabled: bool,
    },
    ReceiveVideo {
        transaction_id: f64,
        enabled: bool,
    },
    GetStreamLength {
        transaction_id: f64,
        stream_name: String,
    },
    /// `_result`
    Result(Response),
    /// `_error`
    Error(Response),
    OnStatus(Status),
    /// Any other command, e.g. `onBWDone`, `onFCPublish`, `checkBandwidth`.
    Call(Call),
}

/// `connect` (§7.2.1.1).
#[derive(Clone, Debug, PartialEq)]
pub struct Connect {
    pub transaction_id: f64,
    /// The `app` property as sent: may carry an instance and a query
    /// (`live/inst?token=…`); see [`AppName::parse`](super::url::AppName::parse).
    pub app: String,
    pub tc_url: Option<String>,
    pub flash_ver: Option<String>,
    /// 0 for AMF0, 3 for AMF3.
    pub object_encoding: f64,
    /// The whole command object.
    pub properties: Object,
    /// Optional user arguments after the command object.
    pub arguments: Vec<Value>,
}

/// Enhanced RTMP's extended capabilities, the `capsEx` number a client
/// puts in `connect`'s command object (E-RTMP v2, "Enhancing NetConnection
/// connect Command"): bit flags the peer supports beyond legacy RTMP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapsEx(pub u32);

impl CapsEx {
    /// The client acts on `NetConnection.Connect.ReconnectRequest` (E-RTMP
    /// v2, "Reconnect Request"): a server may ask it to move.
    pub const RECONNECT: CapsEx = CapsEx(0x01);

    /// Reads a `capsEx` property. The spec types it as a number; a value
    /// that is not a whole number in `u32` range (a string, a boolean, a
    /// fraction, a negative) announces nothing, so a peer that got the type
    /// wrong is treated as a legacy client rather than guessed at.
    pub fn from_value(value: Option<&Value>) -> CapsEx {
        match value.and_then(Value::as_f64) {
            Some(n) if (0.0..=f64::from(u32::MAX)).contains(&n) && n.fract() == 0.0 => {
                // Checked above: a whole number in u32 range.
                CapsEx(n as u32)
            }
            _ => CapsEx::default(),
        }
    }

    /// Every flag of `other` is set here.
    pub fn contains(self, other: CapsEx) -> bool {
        self.0 & other.0 == other.0
    }

    /// The number to send as `capsEx`.
    pub fn to_value(self) -> Value {
        Value::Number(f64::from(self.0))
    }
}

impl Connect {
    /// What the client announced in `capsEx` (nothing when absent).
    pub fn caps_ex(&self) -> CapsEx {
        CapsEx::from_value(self.properties.property("capsEx"))
    }
}

/// `play` (§7.2.2.1).
#[derive(Clone, Debug, PartialEq)]
pub struct Play {
    pub transaction_id: f64,
    pub stream_name: String,
    /// -2: live or recorded, -1: live only, ≥ 0: recorded from there.
    pub start: f64,
    /// -1: until the end.
    pub duration: f64,
    pub reset: bool,
}

/// `publish` type (§7.2.2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishType {
    Live,
    Record,
    Append,
}

/// `_result` and `_error`.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub transaction_id: f64,
    pub command_object: Value,
    pub arguments: Vec<Value>,
}

/// `onStatus` (§7.2.2): level, code and description, plus anything else the
/// info object carried.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub level: String,
    pub code: String,
    pub description: String,
    pub extra: Vec<(String, Value)>,
}

/// A command this module does not type.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub name: String,
    pub transaction_id: f64,
    pub command_object: Value,
    pub arguments: Vec<Value>,
}

/// A command that cannot be typed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("command message does not start with a name")]
    MissingName,
    #[error("{command}: {what} (argument {index}) is missing or not a {expected}")]
    BadArgument {
        command: String,
        transaction_id: f64,
        index: usize,
        what: &'static str,
        expected: &'static str,
    },
}

impl Command {
    /// Types a decoded command message.
    pub fn from_values(values: Vec<Value>) -> Result<Command, CommandError> {
        let mut values = values.into_iter();
        let name = match values.next() {
            Some(Value::String(name)) => name,
            _ => return Err(CommandError::MissingName),
        };
        // Some clients omit the transaction id and object on notifications.
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let command_object = values.next().unwrap_or(Value::Null);
        let args = Args {
            command: &name,
            transaction_id,
            values: values.collect(),
        };
        args.into_command(command_object)
    }

    /// The AMF values of this command, for encoding.
    pub fn to_values(&self) -> Vec<Value> {
        let head = |name: &str, tid: f64, object: Value| {
            vec![Value::string(name), Value::Number(tid), object]
        };
        let with = |name: &str, tid: f64, args: Vec<Value>| {
            let mut v = head(name, tid, Value::Null);
            v.extend(args);
            v
        };
        match self {
            Command::Connect(c) => {
                let mut v = head(
                    "connect",
                    c.transaction_id,
                    Value::Object(c.properties.clone()),
                );
                v.extend(c.arguments.iter().cloned());
                v
            }
            Command::CreateStream { transaction_id } => {
                with("createStream", *transaction_id, vec![])
            }
            Command::ReleaseStream {
                transaction_id,
                stream_name,
            } => with(
                "releaseStream",
                *transaction_id,
                vec![Value::string(stream_name)],
            ),
            Command::FcPublish {
                transaction_id,
                stream_name,
            } => with(
                "FCPublish",
                *transaction_id,
                vec![Value::string(stream_name)],
            ),
            Command::FcUnpublish {
                transaction_id,
                stream_name,
            } => with(
                "FCUnpublish",
                *transaction_id,
                vec![Value::string(stream_name)],
            ),
            Command::Publish {
                transaction_id,
                stream_name,
                publish_type,
            } => with(
                "publish",
                *transaction_id,
                vec![
                    Value::string(stream_name),
                    Value::string(publish_type.as_str()),
                ],
            ),
            Command::Play(p) => with(
                "play",
                p.transaction_id,
                vec![
                    Value::string(&p.stream_name),
                    Value::Number(p.start),
                    Value::Number(p.duration),
                    Value::Boolean(p.reset),
                ],
            ),
            Command::Play2 {
                transaction_id,
                parameters,
            } => with("play2", *transaction_id, vec![parameters.clone()]),
            Command::Pause {
                transaction_id,
                pause,
                position_ms,
            } => with(
                "pause",
                *transaction_id,
                vec![Value::Boolean(*pause), Value::Number(*position_ms)],
            ),
            Command::Seek {
                transaction_id,
                position_ms,
            } => with("seek", *transaction_id, vec![Value::Number(*position_ms)]),
            Command::DeleteStream {
                transaction_id,
                stream_id,
            } => with(
                "deleteStream",
                *transaction_id,
                vec![Value::Number(f64::from(stream_id.0))],
            ),
            Command::CloseStream { transaction_id } => with("closeStream", *transaction_id, vec![]),
            Command::ReceiveAudio {
                transaction_id,
                enabled,
            } => with(
                "receiveAudio",
                *transaction_id,
                vec![Value::Boolean(*enabled)],
            ),
            Command::ReceiveVideo {
                transaction_id,
                enabled,
            } => with(
                "receiveVideo",
                *transaction_id,
                vec![Value::Boolean(*enabled)],
            ),
            Command::GetStreamLength {
                transaction_id,
                stream_name,
            } => with(
                "getStreamLength",
                *transaction_id,
                vec![Value::string(stream_name)],
            ),
            Command::Result(r) | Command::Error(r) => {
                let name = if matches!(self, Command::Result(_)) {
                    "_result"
                } else {
                    "_error"
                };
                let mut v = head(name, r.transaction_id, r.command_object.clone());
                v.extend(r.arguments.iter().cloned());
                v
            }
            Command::OnStatus(s) => with("onStatus", 0.0, vec![s.to_value()]),
            Command::Call(c) => {
                let mut v = head(&c.name, c.transaction_id, c.command_object.clone());
                v.extend(c.arguments.iter().cloned());
                v
            }
        }
    }

    /// The transaction id, for answering with `_result` or `_error`.
    pub fn transaction_id(&self) -> f64 {
        match self {
            Command::Connect(Connect { transaction_id, .. })
            | Command::Play(Play { transaction_id, .. })
            | Command::CreateStream { transaction_id }
            | Command::ReleaseStream { transaction_id, .. }
            | Command::FcPublish { transaction_id, .. }
            | Command::FcUnpublish { transaction_id, .. }
            | Command::Publish { transaction_id, .. }
            | Command::Play2 { transaction_id, .. }
            | Command::Pause { transaction_id, .. }
            | Command::Seek { transaction_id, .. }
            | Command::DeleteStream { transaction_id, .. }
            | Command::CloseStream { transaction_id }
            | Command::ReceiveAudio { transaction_id, .. }
            | Command::ReceiveVideo { transaction_id, .. }
            | Command::GetStreamLength { transaction_id, .. }
            | Command::Result(Response { transaction_id, .. })
            | Command::Error(Response { transaction_id, .. })
            | Command::Call(Call { transaction_id, .. }) => *transaction_id,
            Command::OnStatus(_) => 0.0,
        }
    }
}

/// The arguments after the command object, with the context to name what
/// is wrong with them.
struct Args<'a> {
    command: &'a str,
    transaction_id: f64,
    values: Vec<Value>,
}

impl Args<'_> {
    fn into_command(self, command_object: Value) -> Result<Command, CommandError> {
        let transaction_id = self.transaction_id;
        Ok(match self.command {
            "connect" => Command::Connect(self.connect(command_object)?),
            "createStream" => Command::CreateStream { transaction_id },
            "releaseStream" => Command::ReleaseStream {
                transaction_id,
                stream_name: self.string(0, "stream name")?,
            },
            "FCPublish" => Command::FcPublish {
                transaction_id,
                stream_name: self.string(0, "stream name")?,
            },
            "FCUnpublish" => Command::FcUnpublish {
                transaction_id,
                stream_name: self.string(0, "stream name")?,
            },
            "publish" => Command::Publish {
                transaction_id,
                stream_name: self.string(0, "stream name")?,
                publish_type: self.publish_type()?,
            },
            "play" => Command::Play(Play {
                transaction_id,
                stream_name: self.string(0, "stream name")?,
                start: self.number_or(1, "start", -2.0)?,
                duration: self.number_or(2, "duration", -1.0)?,
                reset: self.bool_or(3, "reset", true)?,
            }),
            "play2" => Command::Play2 {
                transaction_id,
                parameters: self.values.into_iter().next().unwrap_or(Value::Null),
            },
            "pause" => Command::Pause {
                transaction_id,
                pause: self.bool_or(0, "pause flag", true)?,
                position_ms: self.number_or(1, "position", 0.0)?,
            },
            "seek" => Command::Seek {
                transaction_id,
                position_ms: self.number(0, "position")?,
            },
            "deleteStream" => Command::DeleteStream {
                transaction_id,
                stream_id: self.stream_id()?,
            },
            "closeStream" => Command::CloseStream { transaction_id },
            "receiveAudio" => Command::ReceiveAudio {
                transaction_id,
                enabled: self.bool_or(0, "flag", true)?,
            },
            "receiveVideo" => Command::ReceiveVideo {
                transaction_id,
                enabled: self.bool_or(0, "flag", true)?,
            },
            "getStreamLength" => Command::GetStreamLength {
                transaction_id,
                stream_name: self.string(0, "stream name")?,
            },
            "_result" | "_error" => {
                let response = Response {
                    transaction_id,
                    command_object,
                    arguments: self.values,
                };
                if self.command == "_result" {
                    Command::Result(response)
                } else {
                    Command::Error(response)
                }
            }
            "onStatus" => Command::OnStatus(self.status()?),
            name => Command::Call(Call {
                name: name.to_owned(),
                transaction_id,
                command_object,
                arguments: self.values,
            }),
        })
    }

    fn bad(&self, index: usize, what: &'static str, expected: &'static str) -> CommandError {
        CommandError::BadArgument {
            command: self.command.to_owned(),
            transaction_id: self.transaction_id,
            index,
            what,
            expected,
        }
    }

    fn string(&self, index: usize, what: &'static str) -> Result<String, CommandError> {
        match self.values.get(index) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(self.bad(index, what, "string")),
        }
    }

    fn number(&self, index: usize, what: &'static str) -> Result<f64, CommandError> {
        self.values
            .get(index)
            .and_then(Value::as_f64)
            .ok_or_else(|| self.bad(index, what, "number"))
    }

    /// An optional number: absent, null or undefined give `default`.
    fn number_or(
        &self,
        index: usize,
        what: &'static str,
        default: f64,
    ) -> Result<f64, CommandError> {
        match self.values.get(index) {
            None | Some(Value::Null | Value::Undefined) => Ok(default),
            Some(_) => self.number(index, what),
        }
    }

    /// An optional boolean; a number counts as its truth (some clients send
    /// `reset` as 0/1).
    fn bool_or(
        &self,
        index: usize,
        what: &'static str,
        default: bool,
    ) -> Result<bool, CommandError> {
        match self.values.get(index) {
            None | Some(Value::Null | Value::Undefined) => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(v) => v
                .as_f64()
                .map(|n| n != 0.0)
                .ok_or_else(|| self.bad(index, what, "boolean")),
        }
    }

    fn publish_type(&self) -> Result<PublishType, CommandError> {
        match self.values.get(1) {
            None | Some(Value::Null | Value::Undefined) => Ok(PublishType::Live),
            Some(Value::String(s)) => match s.as_str() {
                "live" | "" => Ok(PublishType::Live),
                "record" => Ok(PublishType::Record),
                "append" => Ok(PublishType::Append),
                _ => Err(self.bad(1, "publish type", "live, record or append")),
            },
            Some(_) => Err(self.bad(1, "publish type", "string")),
        }
    }

    fn stream_id(&self) -> Result<MessageStreamId, CommandError> {
        let n = self.number(0, "stream id")?;
        if n.is_finite() && n >= 0.0 && n <= f64::from(u32::MAX) && n.fract() == 0.0 {
            // Checked above: a whole number in u32 range.
            Ok(MessageStreamId(n as u32))
        } else {
            Err(self.bad(0, "stream id", "whole number"))
        }
    }

    fn connect(self, command_object: Value) -> Result<Connect, CommandError> {
        let Value::Object(properties) = command_object else {
            return Err(self.bad(0, "command object", "object"));
        };
        let text = |key| {
            properties
                .property(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Ok(Connect {
            transaction_id: self.transaction_id,
            app: text("app").unwrap_or_default(),
            tc_url: text("tcUrl"),
            flash_ver: text("flashVer"),
            object_encoding: properties
                .property("objectEncoding")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            arguments: self.values,
            properties,
        })
    }

    fn status(&self) -> Result<Status, CommandError> {
        let Some(info) = self.values.first().and_then(Value::properties) else {
            return Err(self.bad(0, "info object", "object"));
        };
        let mut status = Status {
            level: String::new(),
            code: String::new(),
            description: String::new(),
            extra: Vec::new(),
        };
        for (key, value) in info {
            match (key.as_str(), value) {
                ("level", Value::String(s)) => status.level = s.clone(),
                ("code", Value::String(s)) => status.code = s.clone(),
                ("description", Value::String(s)) => status.description = s.clone(),
                _ => status.extra.push((key.clone(), value.clone())),
            }
        }
        Ok(status)
    }
}

impl PublishType {
    pub fn as_str(self) -> &'static str {
        match self {
            PublishType::Live => "live",
            PublishType::Record => "record",
            PublishType::Append => "append",
        }
    }
}

impl Status {
    /// A status with level "status" (or "error" / "warning") and no extras.
    pub fn new(level: &str, code: &str, description: impl Into<String>) -> Status {
        Status {
            level: level.to_owned(),
            code: code.to_owned(),
            description: description.into(),
            extra: Vec::new(),
        }
    }

    /// The info object.
    pub fn to_value(&self) -> Value {
        let mut properties = vec![
            ("level".to_owned(), Value::string(&self.level)),
            ("code".to_owned(), Value::string(&self.code)),
            ("description".to_owned(), Value::string(&self.description)),
        ];
        properties.extend(self.extra.iter().cloned());
        Value::Object(Object {
            class: None,
            properties,
        })
    }
}

/// A data message (types 18 and 15): a handler name and values.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// `@setDataFrame`, handler (usually "onMetaData"), value: a publisher
    /// setting what players receive as that handler's data.
    SetDataFrame { handler: String, value: Value },
    /// `@clearDataFrame`, handler.
    ClearDataFrame { handler: String },
    /// `onMetaData`, value: stream metadata as a player receives it.
    MetaData(Value),
    /// `|RtmpSampleAccess`, audio, video: lets Flash players read samples.
    SampleAccess { audio: bool, video: bool },
    /// Anything else (`onCuePoint`, `onTextData`, `onFI` …), kept whole.
    Other(Vec<Value>),
}

impl Data {
    pub fn from_values(mut values: Vec<Value>) -> Data {
        let name = values.first().and_then(Value::as_str);
        let second = values.get(1).and_then(Value::as_str);
        // Which value is the data, moved out rather than cloned: metadata
        // may be thousands of values.
        let (handler, at) = match (name, second) {
            (Some("@setDataFrame"), Some(handler)) => (handler.to_owned(), 2),
            // ffmpeg and OBS always name the handler; a bare
            // `@setDataFrame` + object means onMetaData.
            (Some("@setDataFrame"), None) if values.len() == 2 => ("onMetaData".to_owned(), 1),
            (Some("@clearDataFrame"), Some(handler)) => {
                return Data::ClearDataFrame {
                    handler: handler.to_owned(),
                };
            }
            (Some("onMetaData"), _) if values.len() == 2 => {
                return Data::MetaData(take(&mut values, 1));
            }
            (Some("|RtmpSampleAccess"), _) => {
                return Data::SampleAccess {
                    audio: values.get(1).and_then(Value::as_bool).unwrap_or(false),
                    video: values.get(2).and_then(Value::as_bool).unwrap_or(false),
                };
            }
            _ => return Data::Other(values),
        };
        Data::SetDataFrame {
            handler,
            value: take(&mut values, at),
        }
    }

    pub fn to_values(&self) -> Vec<Value> {
        match self {
            Data::SetDataFrame { handler, value } => vec![
                Value::string("@setDataFrame"),
                Value::string(handler),
                value.clone(),
            ],
            Data::ClearDataFrame { handler } => {
                vec![Value::string("@clearDataFrame"), Value::string(handler)]
            }
            Data::MetaData(value) => vec![Value::string("onMetaData"), value.clone()],
            Data::SampleAccess { audio, video } => vec![
                Value::string("|RtmpSampleAccess"),
                Value::Boolean(*audio),
                Value::Boolean(*video),
            ],
            Data::Other(values) => values.clone(),
        }
    }
}

/// The value at `index`, moved out (Null if there is none).
fn take(values: &mut [Value], index: usize) -> Value {
    values
        .get_mut(index)
        .map_or(Value::Null, |v| std::mem::replace(v, Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::string(v)
    }

    #[test]
    fn connect_as_ffmpeg_sends_it_is_typed() {
        let values = vec![
            s("connect"),
            Value::Number(1.0),
            Value::object([
                ("app", s("live")),
                ("type", s("nonprivate")),
                ("flashVer", s("FMLE/3.0 (compatible; Lavf59.27.100)")),
                ("tcUrl", s("rtmp://127.0.0.1:1935/live")),
            ]),
        ];
        let Command::Connect(c) = Command::from_values(values).expect("typed") else {
            panic!("not a connect");
        };
        assert_eq!(c.app, "live");
        assert_eq!(c.tc_url.as_deref(), Some("rtmp://127.0.0.1:1935/live"));
        assert_eq!(c.object_encoding, 0.0);
        assert_eq!(c.transaction_id, 1.0);
    }

    fn connect_with(caps_ex: Option<Value>) -> Connect {
        let mut object = vec![("app", s("live")), ("tcUrl", s("rtmp://h/live"))];
        object.extend(caps_ex.map(|v| ("capsEx", v)));
        let values = vec![s("connect"), Value::Number(1.0), Value::object(object)];
        let Command::Connect(c) = Command::from_values(values).expect("typed") else {
            panic!("not a connect");
        };
        c
    }

    #[test]
    fn caps_ex_reads_the_reconnect_bit_of_a_whole_number() {
        let reconnect = |v: Option<Value>| connect_with(v).caps_ex().contains(CapsEx::RECONNECT);
        assert!(reconnect(Some(Value::Number(1.0))));
        // Reconnect and Multitrack.
        assert!(reconnect(Some(Value::Number(3.0))));
        assert_eq!(connect_with(Some(Value::Number(3.0))).caps_ex(), CapsEx(3));
        // AMF3 peers may send an integer.
        assert!(reconnect(Some(Value::Integer(1))));
        // Multitrack only.
        assert!(!reconnect(Some(Value::Number(2.0))));
    }

    #[test]
    fn caps_ex_absent_or_of_the_wrong_type_announces_nothing() {
        for caps_ex in [
            None,
            Some(s("1")),
            Some(Value::Boolean(true)),
            Some(Value::Null),
            Some(Value::Number(1.5)),
            Some(Value::Number(-1.0)),
            Some(Value::Number(f64::NAN)),
            Some(Value::Number(f64::from(u32::MAX) + 1.0)),
        ] {
            let shown = format!("{caps_ex:?}");
            assert_eq!(
                connect_with(caps_ex).caps_ex(),
                CapsEx::default(),
                "{shown}"
            );
        }
    }

    #[test]
    fn caps_ex_survives_a_round_trip_through_connect() {
        let connect = connect_with(Some(CapsEx::RECONNECT.to_value()));
        let again = Command::from_values(Command::Connect(connect.clone()).to_values());
        assert_eq!(again, Ok(Command::Connect(connect)));
        let Ok(Command::Connect(again)) = again else {
            panic!("not a connect");
        };
        assert_eq!(again.caps_ex(), CapsEx::RECONNECT);
    }

    #[test]
    fn play_fills_in_defaults_and_reads_numeric_reset() {
        let values = vec![s("play"), Value::Number(4.0), Value::Null, s("cam?token=1")];
        let Command::Play(p) = Command::from_values(values).expect("typed") else {
            panic!("not a play");
        };
        assert_eq!((p.start, p.duration, p.reset), (-2.0, -1.0, true));
        let values = vec![
            s("play"),
            Value::Number(4.0),
            Value::Null,
            s("cam"),
            Value::Number(-1000.0),
            Value::Number(-1.0),
            Value::Number(0.0),
        ];
        let Command::Play(p) = Command::from_values(values).expect("typed") else {
            panic!("not a play");
        };
        assert_eq!((p.start, p.reset), (-1000.0, false));
    }

    #[test]
    fn publish_without_a_name_is_an_error_that_keeps_the_transaction_id() {
        let err =
            Command::from_values(vec![s("publish"), Value::Number(5.0), Value::Null]).unwrap_err();
        assert_eq!(
            err,
            CommandError::BadArgument {
                command: "publish".into(),
                transaction_id: 5.0,
                index: 0,
                what: "stream name",
                expected: "string"
            }
        );
        assert_eq!(
            err.to_string(),
            "publish: stream name (argument 0) is missing or not a string"
        );
    }

    #[test]
    fn unknown_commands_decode_to_a_call() {
        let c = Command::from_values(vec![s("checkBandwidth"), Value::Number(3.0), Value::Null])
            .expect("typed");
        assert_eq!(c.transaction_id(), 3.0);
        assert!(matches!(c, Command::Call(Call { ref name, .. }) if name == "checkBandwidth"));
        assert_eq!(
            Command::from_values(vec![Value::Number(1.0)]),
            Err(CommandError::MissingName)
        );
    }

    #[test]
    fn commands_round_trip_through_values() {
        let commands = vec![
            Command::CreateStream {
                transaction_id: 2.0,
            },
            Command::Publish {
                transaction_id: 5.0,
                stream_name: "key".into(),
                publish_type: PublishType::Live,
            },
            Command::Play(Play {
                transaction_id: 4.0,
                stream_name: "cam".into(),
                start: -2.0,
                duration: -1.0,
                reset: true,
            }),
            Command::DeleteStream {
                transaction_id: 6.0,
                stream_id: MessageStreamId(1),
            },
            Command::Pause {
                transaction_id: 0.0,
                pause: true,
                position_ms: 1500.0,
            },
            Command::OnStatus(Status::new(
                "status",
                "NetStream.Play.Start",
                "Started playing cam.",
            )),
            Command::Result(Response {
                transaction_id: 2.0,
                command_object: Value::Null,
                arguments: vec![Value::Number(1.0)],
            }),
        ];
        for c in commands {
            assert_eq!(Command::from_values(c.to_values()), Ok(c));
        }
    }

    #[test]
    fn delete_stream_rejects_a_negative_or_fractional_id() {
        for bad in [-1.0, 1.5, f64::NAN] {
            let values = vec![
                s("deleteStream"),
                Value::Number(0.0),
                Value::Null,
                Value::Number(bad),
            ];
            assert!(Command::from_values(values).is_err());
        }
    }

    #[test]
    fn data_messages_are_recognised() {
        let meta = Value::EcmaArray(vec![("width".into(), Value::Number(320.0))]);
        assert_eq!(
            Data::from_values(vec![s("@setDataFrame"), s("onMetaData"), meta.clone()]),
            Data::SetDataFrame {
                handler: "onMetaData".into(),
                value: meta.clone()
            }
        );
        assert_eq!(
            Data::from_values(vec![s("onMetaData"), meta.clone()]),
            Data::MetaData(meta)
        );
        assert_eq!(
            Data::from_values(vec![
                s("|RtmpSampleAccess"),
                Value::Boolean(true),
                Value::Boolean(true)
            ]),
            Data::SampleAccess {
                audio: true,
                video: true
            }
        );
        let cue = vec![s("onCuePoint"), Value::Null];
        assert_eq!(Data::from_values(cue.clone()), Data::Other(cue));
    }
}
