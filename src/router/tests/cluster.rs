//! The harness: four routers sharing a directory, wired by inboxes that
//! drop frames past a bound as the mesh does; each connection an
//! [`OutboundQueue`] fed exactly as the shard's driver feeds it; test
//! frames that say what they are, read back from their wire bytes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::config::{Config, Takeover};
use crate::media::{OutboundQueue, StreamKey};
use crate::protocol::{MessageStreamId, Timestamp};
use crate::router::{
    Action, Answer, ConnRef, Directory, Event, Format, Published, Role, Router, ShardId,
    StreamMessage,
};
use crate::session::{Media, MediaKind};

pub(super) const SHARDS: usize = 4;
pub(super) const STREAM: MessageStreamId = MessageStreamId(1);

pub(super) fn cam() -> StreamKey {
    StreamKey::new("live", "cam")
}

/// A test frame, read back from its wire bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// An HTTP-FLV body's file header, with the tracks it announces.
    FlvHeader {
        audio: bool,
        video: bool,
    },
    Header,
    Video {
        n: u32,
        keyframe: bool,
        ts: u32,
    },
    Audio {
        n: u32,
        ts: u32,
    },
}

pub(super) fn media(kind: MediaKind, ts: u32, payload: &[u8]) -> Published {
    Published::Media(Media {
        kind,
        timestamp: Timestamp(ts),
        payload: Bytes::copy_from_slice(payload),
    })
}

/// AVC frame number `n`: a keyframe or not.
pub(super) fn video(n: u32, keyframe: bool, ts: u32) -> Published {
    let mut payload = BytesMut::new();
    payload.put_slice(&[if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
    payload.put_u32(n);
    media(MediaKind::Video, ts, &payload)
}

/// AAC frame number `n`.
pub(super) fn audio(n: u32, ts: u32) -> Published {
    let mut payload = BytesMut::new();
    payload.put_slice(&[0xaf, 1]);
    payload.put_u32(n);
    media(MediaKind::Audio, ts, &payload)
}

pub(super) fn headers() -> [Published; 2] {
    [
        media(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f]),
        media(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]),
    ]
}

/// Reads a frame back, as packaged for `format`: for RTMP one fmt 0 chunk
/// (1-byte basic header, 11-byte message header) and its payload, as our
/// small frames are packaged; for FLV a tag and its previous-tag-size, in
/// a WebSocket frame (a 2-byte header for our small frames) or not.
pub(super) fn seen(wire: &[u8], format: Format) -> Seen {
    let wire = match format {
        Format::WebSocketFlv => {
            assert_eq!(wire[0], 0x82, "a final binary frame");
            assert_eq!(usize::from(wire[1]), wire.len() - 2, "unmasked, its length");
            &wire[2..]
        }
        Format::Flv | Format::Rtmp { .. } => wire,
    };
    let (type_id, ts, payload) = match format {
        Format::Rtmp { .. } => (
            wire[7],
            u32::from_be_bytes([0, wire[1], wire[2], wire[3]]),
            &wire[12..],
        ),
        Format::Flv | Format::WebSocketFlv => {
            if wire.starts_with(b"FLV") {
                assert_eq!(wire.len(), 13);
                return Seen::FlvHeader {
                    audio: wire[4] & 4 != 0,
                    video: wire[4] & 1 != 0,
                };
            }
            let len = u32::from_be_bytes([0, wire[1], wire[2], wire[3]]) as usize;
            let tail = u32::from_be_bytes(wire[wire.len() - 4..].try_into().unwrap());
            assert_eq!((wire.len(), tail as usize), (11 + len + 4, 11 + len));
            let ts = u32::from_be_bytes([wire[7], wire[4], wire[5], wire[6]]);
            (wire[0], ts, &wire[11..11 + len])
        }
    };
    let number = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
    match (type_id, payload[1]) {
        (8 | 9, 0) => Seen::Header,
        (9, _) => Seen::Video {
            n: number(5),
            keyframe: payload[0] >> 4 == 1,
            ts,
        },
        (8, _) => Seen::Audio { n: number(2), ts },
        other => panic!("not a test frame: {other:?}"),
    }
}

/// One connection: its queue as the shard would fill it, what its session
/// was told, and what it wrote.
pub(super) struct Peer {
    pub(super) shard: usize,
    pub(super) queue: OutboundQueue,
    pub(super) answers: Vec<Answer>,
    pub(super) frames: Vec<Seen>,
    pub(super) ended: Vec<Role>,
    pub(super) closed: bool,
    /// How it takes frames (RTMP unless it plays as another format).
    pub(super) format: Format,
    /// What it wrote, as the buffers it wrote.
    pub(super) written: Vec<Bytes>,
}

pub(super) struct Cluster {
    pub(super) routers: Vec<Router>,
    pub(super) directory: Arc<Directory>,
    pub(super) inboxes: Vec<VecDeque<StreamMessage>>,
    /// Frames an inbox holds before further frames to it are dropped.
    pub(super) inbox_frames_max: usize,
    pub(super) peers: HashMap<ConnRef, Peer>,
    /// Pulls running, by shard and stream, with the name asked for.
    pub(super) pulls: HashMap<(usize, StreamKey), String>,
    pub(super) pushes: HashSet<(usize, StreamKey)>,
    /// Programs running for publishes, by shard and stream, with the name
    /// published; and how many were started.
    pub(super) execs: HashMap<(usize, StreamKey), String>,
    pub(super) exec_starts: usize,
    /// Streams packaged for HLS, by shard.
    pub(super) hls: HashSet<(usize, StreamKey)>,
    /// Streams recorded, by shard, with the frames their recording got
    /// (from its start, then tapped).
    pub(super) records: HashMap<(usize, StreamKey), usize>,
    /// Each recording's start (true) and stop, in order.
    pub(super) record_log: Vec<(usize, StreamKey, bool)>,
    pub(super) pushed: usize,
    pub(super) refused_pulls: usize,
    pub(super) lost: u64,
    pub(super) now_ms: u64,
    pub(super) next_serial: u64,
    pub(super) config: Rc<Config>,
}

impl Cluster {
    pub(super) fn new(config: Config) -> Cluster {
        let directory = Arc::new(Directory::default());
        let config = Rc::new(config);
        Cluster {
            routers: (0..SHARDS)
                .map(|i| Router::new(ShardId(i), directory.clone(), config.clone()))
                .collect(),
            directory,
            inboxes: (0..SHARDS).map(|_| VecDeque::new()).collect(),
            inbox_frames_max: crate::limits::SHARD_INBOX_MESSAGES_MAX,
            peers: HashMap::new(),
            pulls: HashMap::new(),
            pushes: HashSet::new(),
            execs: HashMap::new(),
            exec_starts: 0,
            hls: HashSet::new(),
            records: HashMap::new(),
            record_log: Vec::new(),
            pushed: 0,
            refused_pulls: 0,
            lost: 0,
            now_ms: 1,
            next_serial: 0,
            config,
        }
    }

    pub(super) fn connect(&mut self, shard: usize) -> ConnRef {
        self.next_serial += 1;
        let conn = ConnRef {
            key: self.next_serial as usize,
            serial: self.next_serial,
        };
        let player = &self.config.player;
        let queue = OutboundQueue::new(
            player.queue_bytes_max,
            player.slow_disconnect_after.as_millis() as u64,
        );
        let peer = Peer {
            shard,
            queue,
            answers: Vec::new(),
            frames: Vec::new(),
            ended: Vec::new(),
            closed: false,
            format: Format::Rtmp {
                chunk_size: self.config.chunk_size,
            },
            written: Vec::new(),
        };
        self.peers.insert(conn, peer);
        conn
    }

    pub(super) fn shard_of(&self, conn: ConnRef) -> usize {
        self.peers[&conn].shard
    }

    pub(super) fn handle(&mut self, shard: usize, event: Event) {
        let mut actions = Vec::new();
        let router = &mut self.routers[shard];
        router.handle(event, self.now_ms);
        router.take_actions(&mut actions);
        self.apply(shard, actions);
    }

    /// Does what the shard's driver does with `actions`.
    pub(super) fn apply(&mut self, shard: usize, actions: Vec<Action>) {
        let mut closing = Vec::new();
        for action in actions {
            match action {
                Action::Deliver {
                    conn, class, wire, ..
                } => {
                    let peer = self.peers.get_mut(&conn).unwrap();
                    if !peer.closed {
                        let _ = peer.queue.offer(class, wire, self.now_ms);
                    }
                }
                Action::Start { conn, wires, gate } => {
                    let peer = self.peers.get_mut(&conn).unwrap();
                    for wire in wires {
                        let _ = peer.queue.push(wire);
                    }
                    if gate {
                        peer.queue.gate_video();
                    }
                }
                Action::GateVideo { conn } => self.peers.get_mut(&conn).unwrap().queue.gate_video(),
                Action::Wake { conn } => assert!(self.peers.contains_key(&conn)),
                Action::Send { to, message } => {
                    let inbox = &mut self.inboxes[to.0];
                    let frames = inbox
                        .iter()
                        .filter(|m| matches!(m, StreamMessage::Frame { .. }))
                        .count();
                    let is_frame = matches!(message, StreamMessage::Frame { .. });
                    if !is_frame || frames < self.inbox_frames_max {
                        inbox.push_back(message);
                    }
                }
                Action::Answer { conn, answer } => {
                    self.peers.get_mut(&conn).unwrap().answers.push(answer);
                }
                Action::StartPull { key, play_name } => {
                    let previous = self.pulls.insert((shard, key), play_name);
                    assert!(previous.is_none(), "one pull per stream and shard");
                }
                Action::StopPull { key } => {
                    assert!(self.pulls.remove(&(shard, key)).is_some());
                }
                Action::PullRefused { .. } => self.refused_pulls += 1,
                Action::StartPushes { key, .. } => assert!(self.pushes.insert((shard, key))),
                Action::Tap { key, .. } => {
                    let at = (shard, key);
                    let recorded = self.records.get_mut(&at).map(|frames| *frames += 1);
                    if self.pushes.contains(&at) {
                        self.pushed += 1;
                    } else {
                        let hls = self.hls.contains(&at);
                        assert!(hls || recorded.is_some(), "a tap of nothing");
                    }
                }
                Action::StartHls { key } => assert!(self.hls.insert((shard, key))),
                Action::StopHls { key } => assert!(self.hls.remove(&(shard, key))),
                Action::StartRecord { key, frames } => {
                    let started = self.records.insert((shard, key.clone()), frames.len());
                    assert!(started.is_none(), "one recording per stream and shard");
                    self.record_log.push((shard, key, true));
                }
                Action::StopRecord { key } => {
                    assert!(self.records.remove(&(shard, key.clone())).is_some());
                    self.record_log.push((shard, key, false));
                }
                Action::StopPushes { key } => assert!(self.pushes.remove(&(shard, key))),
                Action::StartExec { key, name } => {
                    let previous = self.execs.insert((shard, key), name);
                    assert!(previous.is_none(), "one program per publish");
                    self.exec_starts += 1;
                }
                Action::StopExec { key } => {
                    assert!(self.execs.remove(&(shard, key)).is_some());
                }
                Action::Ended { conn, role } => self.peers.get_mut(&conn).unwrap().ended.push(role),
                Action::Replaced { conn, .. } => {
                    self.peers.get_mut(&conn).unwrap().closed = true;
                    closing.push(conn);
                }
                Action::Lost { frames, .. } => self.lost += frames,
                Action::NotPackaged { error, .. } => panic!("not packaged: {error}"),
            }
        }
        // The closed connection's reader ends, and tells the router.
        for conn in closing {
            self.handle(shard, Event::Closed { conn });
        }
    }

    /// Delivers inbox messages until every inbox is empty.
    pub(super) fn run(&mut self) {
        while let Some(shard) = (0..SHARDS).find(|s| !self.inboxes[*s].is_empty()) {
            while let Some(message) = self.inboxes[shard].pop_front() {
                self.handle(shard, Event::Message(message));
            }
        }
    }

    /// Lets `ms` pass: every due deadline is served, messages delivered.
    pub(super) fn pass(&mut self, ms: u64) {
        let until = self.now_ms + ms;
        loop {
            let next = (0..SHARDS)
                .filter_map(|s| self.routers[s].next_deadline())
                .filter(|at| *at <= until)
                .min();
            let Some(at) = next else { break };
            self.now_ms = self.now_ms.max(at);
            for shard in 0..SHARDS {
                if self.routers[shard].next_deadline().is_some_and(|d| d <= at) {
                    self.handle(shard, Event::Tick);
                }
            }
            self.run();
        }
        self.now_ms = until;
    }

    pub(super) fn publish(&mut self, shard: usize, name: &str) -> ConnRef {
        let conn = self.connect(shard);
        self.handle(
            shard,
            Event::Publish {
                conn,
                stream_id: STREAM,
                key: StreamKey::new("live", name),
                name: name.to_owned(),
                waited_ms: 0,
            },
        );
        self.run();
        conn
    }

    pub(super) fn play(&mut self, shard: usize, name: &str) -> ConnRef {
        let format = Format::Rtmp {
            chunk_size: self.config.chunk_size,
        };
        self.play_as(shard, name, format)
    }

    /// A player taking its frames in `format`.
    pub(super) fn play_as(&mut self, shard: usize, name: &str, format: Format) -> ConnRef {
        let conn = self.connect(shard);
        self.peers.get_mut(&conn).unwrap().format = format;
        self.handle(
            shard,
            Event::Play {
                conn,
                stream_id: STREAM,
                key: StreamKey::new("live", name),
                name: name.to_owned(),
                reset: false,
                format,
            },
        );
        self.run();
        conn
    }

    pub(super) fn send(&mut self, publisher: ConnRef, message: Published) {
        let shard = self.shard_of(publisher);
        self.handle(
            shard,
            Event::Publisher {
                conn: publisher,
                stream_id: STREAM,
                message,
            },
        );
    }

    pub(super) fn close(&mut self, conn: ConnRef) {
        let shard = self.shard_of(conn);
        self.peers.get_mut(&conn).unwrap().closed = true;
        self.handle(shard, Event::Closed { conn });
        self.run();
    }

    /// Writes everything queued for `conn`; returns what it received so
    /// far, in order.
    pub(super) fn received(&mut self, conn: ConnRef) -> Vec<Seen> {
        let peer = self.peers.get_mut(&conn).unwrap();
        let mut batch = Vec::new();
        peer.queue.take_batch(usize::MAX, usize::MAX, &mut batch);
        let written = batch.iter().map(Bytes::len).sum();
        let format = peer.format;
        peer.frames
            .extend(batch.iter().map(|wire| seen(wire, format)));
        peer.written.extend(batch.iter().cloned());
        peer.queue.written(written, &mut batch);
        peer.frames.clone()
    }

    pub(super) fn answers(&self, conn: ConnRef) -> &[Answer] {
        &self.peers[&conn].answers
    }

    /// Nothing is left anywhere once everyone left and time passed.
    pub(super) fn assert_empty(&mut self) {
        self.run();
        self.pass(60_000);
        for (shard, router) in self.routers.iter().enumerate() {
            assert!(router.streams.is_empty(), "streams left on shard {shard}");
            assert!(router.roles.is_empty(), "roles left on shard {shard}");
            assert!(router.pulls_started.is_empty(), "pulls charged on {shard}");
            assert!(router.deadlines.is_empty(), "deadlines left on {shard}");
        }
        assert!(self.pulls.is_empty(), "pulls left: {:?}", self.pulls);
        assert!(self.pushes.is_empty());
        assert!(
            self.records.is_empty(),
            "recordings left: {:?}",
            self.records
        );
        assert!(self.execs.is_empty(), "programs left: {:?}", self.execs);
        assert_eq!(self.directory.len(), 0, "directory entries left");
    }
}

/// A stream's frames as an encoder sends them: headers, then a keyframe
/// every `gop` video frames, audio between; numbered from `first`.
pub(super) struct Encoder {
    pub(super) next: u32,
    pub(super) gop: u32,
    pub(super) ts: u32,
}

impl Encoder {
    pub(super) fn new(gop: u32) -> Encoder {
        Encoder {
            next: 0,
            gop,
            ts: 0,
        }
    }

    /// The next video frame and an audio frame.
    pub(super) fn next(&mut self) -> [Published; 2] {
        let n = self.next;
        self.next += 1;
        self.ts += 33;
        [video(n, n % self.gop == 0, self.ts), audio(n, self.ts + 10)]
    }
}

pub(super) fn videos(frames: &[Seen]) -> Vec<(u32, bool)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Seen::Video { n, keyframe, .. } => Some((*n, *keyframe)),
            _ => None,
        })
        .collect()
}

/// Every player's video is in order, starts on a keyframe, and after any
/// frame it missed goes on at a keyframe; audio is in order.
pub(super) fn assert_watchable(frames: &[Seen]) {
    let mut last: Option<u32> = None;
    for (n, keyframe) in videos(frames) {
        match last {
            Some(before) => {
                assert!(n > before, "video out of order: {n} after {before}");
                assert!(
                    n == before + 1 || keyframe,
                    "gap before {n} without a keyframe"
                );
            }
            None => assert!(keyframe, "video starts at {n}, not a keyframe"),
        }
        last = Some(n);
    }
    let audio: Vec<u32> = frames
        .iter()
        .filter_map(|f| match f {
            Seen::Audio { n, .. } => Some(*n),
            _ => None,
        })
        .collect();
    assert!(
        audio.windows(2).all(|w| w[0] < w[1]),
        "audio out of order: {audio:?}"
    );
}

/// Settings with takeover `policy`.
pub(super) fn takeover(policy: Takeover) -> Config {
    let mut config = Config::default();
    config.stream.takeover = policy;
    config
}

/// `config` with a program run while a stream of app `live` is
/// published (`[app.live] exec_publish`).
pub(super) fn executing(mut config: Config) -> Config {
    let argv = ["thumbnailer", "rtmp://127.0.0.1:{port}/{app}/{name}"].map(String::from);
    let command = crate::config::ExecCommand::parse("exec_publish", &argv).unwrap();
    config.exec_publish.insert("live".into(), command);
    config
}

/// `config` with an origin for every app: a play of a stream nobody
/// publishes pulls it.
pub(super) fn pulling(mut config: Config) -> Config {
    config.relay.origins =
        vec![crate::protocol::url::RtmpUrl::parse("rtmp://127.0.0.1/live").unwrap()];
    config
}
