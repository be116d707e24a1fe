//! Publish, play, takeover and their ends; a stream's frames from its
//! publisher or pull; the deadlines.

use super::deadlines::{Retry, Timer};
use super::directory::{Caps, Claim, Pulling, Resolution};
use super::stream::{Player, Source, Stream};
use super::{
    Action, Answer, ConnRef, Format, Published, Refusal, Role, Router, ShardId, StreamMessage,
};
use crate::config::{Config, Takeover};
use crate::limits;
use crate::media::{LiveStream, StreamKey};
use crate::protocol::{MessageStreamId, Timestamp};

/// How often a publish waiting for the stream's previous publisher to go
/// asks again.
const PUBLISH_RETRY_STEP_MS: u64 = 50;

impl Router {
    pub(super) fn new_stream(config: &Config, key: &StreamKey) -> Stream {
        let live = LiveStream::new(config.stream_for(key.app()).live(), config.chunk_size);
        Stream::new(live, config.player.write_window.as_millis() as u64)
    }

    fn answer(&mut self, conn: ConnRef, answer: Answer) {
        self.actions.push(Action::Answer { conn, answer });
    }

    /// Claims the stream and starts the publish, or refuses it.
    pub(super) fn publish(
        &mut self,
        conn: ConnRef,
        stream_id: MessageStreamId,
        key: StreamKey,
        name: String,
        waited_ms: u64,
    ) {
        let config = self.config();
        let replace = config.stream_for(key.app()).takeover == Takeover::Replace;
        let caps = Caps {
            publishers: config.publishers_max,
            streams: config.streams_max,
            pulls: config.relay.pulls_max,
        };
        let why = match self.directory.claim(&key, self.shard, replace, caps) {
            Claim::Granted {
                replaced,
                waiting,
                resume_at,
            } => {
                match replaced {
                    Some(previous) if previous == self.shard => self.kick_publisher(&key, false),
                    Some(previous) => {
                        self.send(previous, StreamMessage::Replaced { key: key.clone() })
                    }
                    None => {}
                }
                let owner = self.shard;
                for shard in waiting.into_iter().filter(|s| *s != owner) {
                    let key = key.clone();
                    self.send(shard, StreamMessage::Published { key, owner });
                }
                self.start_publish(conn, stream_id, key, name, resume_at);
                return;
            }
            // An encoder that reconnects publishes on its new connection,
            // maybe before its old one's close is handled (on any shard):
            // it should get its stream once the close lands, not
            // `BadName`. A real second publisher is still refused, after
            // the wait.
            Claim::Busy(_) if waited_ms < limits::PUBLISH_BUSY_WAIT_MS => {
                let retry = Timer::Retry(Box::new(Retry {
                    conn,
                    stream_id,
                    key,
                    name,
                    waited_ms: waited_ms + PUBLISH_RETRY_STEP_MS,
                }));
                self.deadlines
                    .add(self.now_ms + PUBLISH_RETRY_STEP_MS, retry);
                return;
            }
            Claim::Busy(owner) => Refusal::Busy(owner),
            Claim::Full(cap) => Refusal::Full(cap),
        };
        let answer = Answer::PublishRefused {
            stream_id,
            key,
            why,
        };
        self.answer(conn, answer);
    }

    /// The stream is this publisher's now: its players (here and, through
    /// the directory, on other shards) start from it, and its program and
    /// pushes.
    /// `resume_at`: where players elsewhere are, for the clock to go on.
    fn start_publish(
        &mut self,
        conn: ConnRef,
        stream_id: MessageStreamId,
        key: StreamKey,
        name: String,
        resume_at: Option<Timestamp>,
    ) {
        let config = self.config();
        self.answer(
            conn,
            Answer::PublishAccepted {
                stream_id,
                key: key.clone(),
            },
        );
        self.set_role(conn, stream_id, Role::Publisher(key.clone()));
        let stream =
            (self.streams.entry(key.clone())).or_insert_with(|| Router::new_stream(&config, &key));
        if let Source::Remote { owner, .. } = stream.source {
            let from = self.shard;
            let message = StreamMessage::Unsubscribe {
                key: key.clone(),
                from,
            };
            self.actions.push(Action::Send { to: owner, message });
            // Its players had the other shard's publisher: like players
            // whose publisher was replaced there, they are told and start
            // again from this one's headers and next keyframe.
            stream.unpublished_to_players(&mut self.actions);
        }
        stream.source = Source::Local {
            conn,
            stream_id,
            since_ms: self.now_ms,
        };
        stream.subscribers.clear();
        if let Some(at) = resume_at {
            stream.live.continue_from(at);
        }
        stream.live.restart();
        stream.restart_players(&mut self.actions);
        if config.exec_for(key.app()).is_some() {
            stream.exec = true;
            self.actions.push(Action::StartExec {
                key: key.clone(),
                name: name.clone(),
            });
        }
        if !config.relay.push_for(key.app()).is_empty() {
            stream.pushing = true;
            self.actions.push(Action::StartPushes {
                key: key.clone(),
                name,
            });
        }
        self.start_hls(&key);
        self.record_if_enabled(&key);
    }

    /// Takeover: the stream's current publisher (or pull) on this shard
    /// goes, its players stay. `resolve`: look for the new owner (it is
    /// on another shard); a same-shard takeover sets the new source itself.
    pub(super) fn kick_publisher(&mut self, key: &StreamKey, resolve: bool) {
        if self.stop_pull(key) {
            self.source_gone(key, resolve);
            return;
        }
        let Some(Source::Local {
            conn, stream_id, ..
        }) = self.streams.get(key).map(|s| s.source)
        else {
            return;
        };
        self.take_role(conn, stream_id);
        self.source_gone(key, resolve);
        self.actions.push(Action::Replaced {
            conn,
            key: key.clone(),
        });
    }

    pub(super) fn play(
        &mut self,
        conn: ConnRef,
        stream_id: MessageStreamId,
        key: StreamKey,
        name: String,
        reset: bool,
        format: Format,
    ) {
        let config = self.config();
        let stream =
            (self.streams.entry(key.clone())).or_insert_with(|| Router::new_stream(&config, &key));
        if stream.players.is_empty() && stream.source == Source::Waiting {
            let seen = stream.live.latest_timestamp();
            match self.resolve_source(&key, &name, seen, conn) {
                Ok(source) => {
                    if let Some(stream) = self.streams.get_mut(&key) {
                        stream.source = source;
                    }
                }
                Err(cap) => {
                    self.streams.remove(&key);
                    self.actions.push(Action::PullRefused {
                        conn,
                        key: key.clone(),
                        cap,
                    });
                    let answer = Answer::PlayRefused {
                        stream_id,
                        key,
                        name,
                        cap,
                    };
                    self.answer(conn, answer);
                    return;
                }
            }
        }
        let answer = Answer::PlayAccepted {
            stream_id,
            key: key.clone(),
            name: name.clone(),
            reset,
        };
        self.answer(conn, answer);
        self.set_role(conn, stream_id, Role::Player(key.clone()));
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        if let Source::Pull { idle_since_ms, .. } = &mut stream.source {
            *idle_since_ms = None;
        }
        stream
            .players
            .push(Player::new(conn, stream_id, name, format));
        if stream.is_live() {
            stream.start_player(stream.players.len() - 1, &mut self.actions);
        }
    }

    /// Finds the stream's owner and subscribes, pulls it from an origin,
    /// or waits for a publisher; `Err(cap)` if a pull would pass `cap`.
    /// `play_name` is what a player asked for, query and all: a pull passes
    /// it on to the origin, charged to `starter`. `seen`: the latest
    /// timestamp this shard's players got, for the next publisher to
    /// continue from.
    fn resolve_source(
        &mut self,
        key: &StreamKey,
        play_name: &str,
        seen: Option<Timestamp>,
        starter: ConnRef,
    ) -> Result<Source, &'static str> {
        let pulling = self.pulling(key, starter);
        let source = match self.directory.find_or_pull(key, self.shard, pulling, seen) {
            Resolution::Pull { waiting } => self.pull_here(key, play_name, starter, waiting),
            Resolution::Full(cap) => return Err(cap),
            Resolution::Owner(owner) if owner != self.shard => {
                let from = self.shard;
                self.send(
                    owner,
                    StreamMessage::Subscribe {
                        key: key.clone(),
                        from,
                    },
                );
                Source::Remote {
                    owner,
                    synced: false,
                }
            }
            Resolution::Owner(_) | Resolution::Wait => Source::Waiting,
        };
        Ok(source)
    }

    /// Whether a stream not had anywhere may be pulled for `starter`: not
    /// without origins for its app, nor past the caps.
    fn pulling(&self, key: &StreamKey, starter: ConnRef) -> Pulling {
        let relay = &self.config.relay;
        if relay.origins_for(key.app()).is_empty() {
            Pulling::No
        } else if self.pulls_started(starter) >= relay.pulls_per_connection_max {
            Pulling::Refused("relay.pulls_per_connection_max")
        } else {
            Pulling::Within(Caps {
                publishers: 0,
                streams: self.config.streams_max,
                pulls: relay.pulls_max,
            })
        }
    }

    /// This shard pulls `key` (the directory made it the owner), asking
    /// for `play_name`, charged to `starter`; the shards in `waiting` are
    /// told where the stream is now.
    fn pull_here(
        &mut self,
        key: &StreamKey,
        play_name: &str,
        starter: ConnRef,
        waiting: Vec<ShardId>,
    ) -> Source {
        self.actions.push(Action::StartPull {
            key: key.clone(),
            play_name: play_name.to_owned(),
        });
        *self.pulls_started.entry(starter).or_default() += 1;
        self.start_hls(key);
        self.record_if_enabled(key);
        for shard in waiting {
            let owner = self.shard;
            self.send(
                shard,
                StreamMessage::Published {
                    key: key.clone(),
                    owner,
                },
            );
        }
        Source::Pull {
            since_ms: self.now_ms,
            starter,
            idle_since_ms: None,
            idle_timer: false,
        }
    }

    /// An HLS request of `conn` wants `key`, which no shard packages:
    /// pull it here, if its app has origins and the caps allow, as a
    /// stream watched for `hls.idle_ms`; later HLS requests keep it
    /// ([`super::Event::HlsWatched`]), else it stops like any unwatched pull.
    pub(super) fn hls_wanted(&mut self, conn: ConnRef, key: StreamKey, play_name: &str) {
        let pulling = self.pulling(&key, conn);
        if self.streams.contains_key(&key) || pulling == Pulling::No {
            return;
        }
        match self.directory.find_or_pull(&key, self.shard, pulling, None) {
            Resolution::Pull { waiting } => {
                let stream = Router::new_stream(&self.config, &key);
                self.streams.insert(key.clone(), stream);
                let source = self.pull_here(&key, play_name, conn, waiting);
                if let Some(stream) = self.streams.get_mut(&key) {
                    stream.source = source;
                }
                let watched_ms = self.config.hls.idle.as_millis() as u64;
                self.hls_watched_until(&key, self.now_ms.saturating_add(watched_ms));
            }
            Resolution::Full(cap) => self.actions.push(Action::PullRefused { conn, key, cap }),
            // Another shard has the source, and packages it.
            Resolution::Owner(_) | Resolution::Wait => {}
        }
    }

    /// HLS players hold `key`: a pull of it nobody else watches is idle
    /// from `until_ms` on.
    pub(super) fn hls_watched_until(&mut self, key: &StreamKey, until_ms: u64) {
        let Some(stream) = self.streams.get_mut(key).filter(|s| s.is_unwatched_pull()) else {
            return;
        };
        if let Source::Pull { idle_since_ms, .. } = &mut stream.source {
            *idle_since_ms = Some(idle_since_ms.map_or(until_ms, |since| since.max(until_ms)));
        }
        self.arm_idle_stop(key);
    }

    /// A source of `key` starts here: it is packaged for HLS if its app is.
    fn start_hls(&mut self, key: &StreamKey) {
        if !self.config().hls.enabled_for(key.app()) {
            return;
        }
        // A publisher taking over this shard's pull keeps its packager.
        if let Some(stream) = self.streams.get_mut(key).filter(|s| !s.hls) {
            stream.hls = true;
            self.actions.push(Action::StartHls { key: key.clone() });
        }
    }

    /// A source of `key` starts here: it is recorded if its app is.
    fn record_if_enabled(&mut self, key: &StreamKey) {
        if self.config().record.for_app(key.app()).enabled {
            self.record(key);
        }
    }

    /// The admin API asks for `key` to be recorded: done if its source is
    /// here.
    pub(super) fn start_record(&mut self, key: &StreamKey) {
        if self.streams.get(key).is_some_and(Stream::is_source) {
            self.record(key);
        }
    }

    /// Records `key` from now on unless it is already: from its headers
    /// and GOP, so a recording asked for mid-stream starts at the last
    /// keyframe.
    fn record(&mut self, key: &StreamKey) {
        let Some(stream) = self.streams.get_mut(key).filter(|s| !s.recording) else {
            return;
        };
        stream.recording = true;
        let frames = stream.live.gop().snapshot().cloned().collect();
        self.actions.push(Action::StartRecord {
            key: key.clone(),
            frames,
        });
    }

    /// The recording of `key` ends, if there is one.
    pub(super) fn stop_record(&mut self, key: &StreamKey) {
        if let Some(stream) = self.streams.get_mut(key) {
            if std::mem::take(&mut stream.recording) {
                self.actions.push(Action::StopRecord { key: key.clone() });
            }
        }
    }

    /// Stops this shard's pull of `key`, if it has one; true if it did.
    fn stop_pull(&mut self, key: &StreamKey) -> bool {
        let Some(stream) = self.streams.get_mut(key) else {
            return false;
        };
        let Source::Pull { starter, .. } = stream.source else {
            return false;
        };
        stream.source = Source::Waiting;
        if std::mem::take(&mut stream.hls) {
            self.actions.push(Action::StopHls { key: key.clone() });
        }
        if std::mem::take(&mut stream.recording) {
            self.actions.push(Action::StopRecord { key: key.clone() });
        }
        if let Some(count) = self.pulls_started.get_mut(&starter) {
            *count -= 1;
            if *count == 0 {
                self.pulls_started.remove(&starter);
            }
        }
        self.actions.push(Action::StopPull { key: key.clone() });
        true
    }

    /// The stream cannot be had here (its pull found no origin with it, or
    /// a new pull would pass a cap): players are told
    /// `NetStream.Play.StreamNotFound` and let go, subscribed shards are
    /// told the same, and the stream is dropped.
    pub(super) fn stream_not_found(&mut self, key: &StreamKey) {
        let Some(stream) = self.streams.remove(key) else {
            return;
        };
        if stream.hls {
            self.actions.push(Action::StopHls { key: key.clone() });
        }
        if stream.recording {
            self.actions.push(Action::StopRecord { key: key.clone() });
        }
        for shard in stream.subscribers {
            self.send(shard, StreamMessage::NotFound { key: key.clone() });
        }
        for player in stream.players {
            let (conn, stream_id) = (player.conn, player.stream_id);
            let name = player.name;
            self.answer(conn, Answer::NotFound { stream_id, name });
            if let Some(role) = self.take_role(conn, stream_id) {
                self.actions.push(Action::Ended { conn, role });
            }
        }
    }

    pub(super) fn publisher_message(
        &mut self,
        conn: ConnRef,
        stream_id: MessageStreamId,
        message: Published,
    ) {
        let Some(Role::Publisher(key)) = self.role(conn, stream_id).cloned() else {
            return;
        };
        if let Err(error) = self.package(&key, message) {
            self.actions.push(Action::NotPackaged { conn, key, error });
        }
    }

    /// Packages a message of the stream's source and fans it out.
    fn package(&mut self, key: &StreamKey, message: Published) -> Result<(), String> {
        let Some(stream) = self.streams.get_mut(key) else {
            return Ok(());
        };
        let frame = match message {
            Published::Media(media) => stream.live.publish(media),
            Published::Metadata {
                timestamp,
                metadata,
            } => stream.live.publish_metadata(timestamp, metadata),
        }
        .map_err(|error| error.to_string())?;
        let hold = stream.fan_out(key, &frame, self.now_ms, &mut self.actions);
        if let Some(deadline_ms) = hold {
            self.hold_until(deadline_ms, key);
        }
        Ok(())
    }

    /// `key`'s players hold frames to be written by `deadline_ms` unless a
    /// write comes first.
    pub(super) fn hold_until(&mut self, deadline_ms: u64, key: &StreamKey) {
        self.deadlines
            .add(deadline_ms, Timer::Hold { key: key.clone() });
    }

    pub(super) fn pulled(&mut self, key: &StreamKey, message: Published) {
        let is_pull =
            (self.streams.get(key)).is_some_and(|s| matches!(s.source, Source::Pull { .. }));
        if is_pull {
            // A pull's message that does not package is the origin's
            // fault; the pull's own counters show what it received.
            let _ = self.package(key, message);
        }
    }

    pub(super) fn pull_unavailable(&mut self, key: &StreamKey) {
        if self.stop_pull(key) {
            self.directory.release(key, self.shard);
            self.stream_not_found(key);
        }
    }

    pub(super) fn pull_discontinuity(&mut self, key: &StreamKey) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        // The next origin sends its own headers and GOP; nothing cached
        // from the last one may be mixed in for a player joining now.
        stream.live.restart();
        stream.gate_players(&mut self.actions);
        for to in stream.subscribers.clone() {
            self.send(to, StreamMessage::Discontinuity { key: key.clone() });
        }
    }

    pub(super) fn stream_closed(&mut self, conn: ConnRef, stream_id: MessageStreamId) {
        match self.take_role(conn, stream_id) {
            Some(Role::Publisher(key)) => self.unpublish(conn, stream_id, key),
            Some(Role::Player(key)) => self.stop_player(conn, stream_id, key),
            None => {}
        }
    }

    /// A connection ended: everything it published or played ends too.
    pub(super) fn closed(&mut self, conn: ConnRef) {
        self.deadlines.forget(conn);
        for (stream_id, role) in self.roles.remove(&conn).unwrap_or_default() {
            match role {
                Role::Publisher(key) => self.unpublish(conn, stream_id, key),
                Role::Player(key) => self.stop_player(conn, stream_id, key),
            }
        }
    }

    fn unpublish(&mut self, conn: ConnRef, stream_id: MessageStreamId, key: StreamKey) {
        let is_source = self.streams.get(&key).is_some_and(|s| {
            matches!(s.source, Source::Local { conn: c, stream_id: id, .. } if c == conn && id == stream_id)
        });
        if is_source {
            self.directory.release(&key, self.shard);
            self.source_gone(&key, true);
        }
        let role = Role::Publisher(key);
        self.actions.push(Action::Ended { conn, role });
    }

    /// The stream's source went away: tell players and subscribed shards,
    /// then find a new source for the players (or drop the stream).
    pub(super) fn source_gone(&mut self, key: &StreamKey, resolve: bool) {
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        if std::mem::take(&mut stream.pushing) {
            self.actions.push(Action::StopPushes { key: key.clone() });
        }
        if std::mem::take(&mut stream.exec) {
            self.actions.push(Action::StopExec { key: key.clone() });
        }
        if std::mem::take(&mut stream.hls) {
            self.actions.push(Action::StopHls { key: key.clone() });
        }
        if std::mem::take(&mut stream.recording) {
            self.actions.push(Action::StopRecord { key: key.clone() });
        }
        for to in std::mem::take(&mut stream.subscribers) {
            let message = StreamMessage::SourceGone { key: key.clone() };
            self.actions.push(Action::Send { to, message });
        }
        stream.live.restart();
        stream.source = Source::Waiting;
        stream.unpublished_to_players(&mut self.actions);
        let Some(first) = stream.players.first() else {
            self.streams.remove(key);
            return;
        };
        if !resolve {
            return;
        }
        let (name, starter) = (first.name.clone(), first.conn);
        let seen = stream.live.latest_timestamp();
        match self.resolve_source(key, &name, seen, starter) {
            Ok(source) => {
                if let Some(stream) = self.streams.get_mut(key) {
                    stream.source = source;
                }
            }
            Err(cap) => {
                let key = key.clone();
                self.actions.push(Action::PullRefused {
                    conn: starter,
                    key: key.clone(),
                    cap,
                });
                self.stream_not_found(&key);
            }
        }
    }

    fn stop_player(&mut self, conn: ConnRef, stream_id: MessageStreamId, key: StreamKey) {
        let role = Role::Player(key.clone());
        self.actions.push(Action::Ended { conn, role });
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        stream.remove_player(conn, stream_id);
        if !stream.players.is_empty() {
            return;
        }
        match stream.source {
            Source::Local { .. } => return,
            Source::Pull { .. } => {
                if stream.subscribers.is_empty() {
                    self.schedule_idle_stop(&key);
                }
                return;
            }
            Source::Remote { owner, .. } => {
                let from = self.shard;
                let message = StreamMessage::Unsubscribe {
                    key: key.clone(),
                    from,
                };
                self.send(owner, message);
            }
            Source::Waiting => self.directory.stop_waiting(&key, self.shard),
        }
        self.streams.remove(&key);
    }

    pub(super) fn with_player(
        &mut self,
        conn: ConnRef,
        stream_id: MessageStreamId,
        f: impl FnOnce(&mut Player, &mut Vec<Action>),
    ) {
        let Some(Role::Player(key)) = self.role(conn, stream_id).cloned() else {
            return;
        };
        let player = (self.streams.get_mut(&key)).and_then(|s| s.player_mut(conn, stream_id));
        if let Some(player) = player {
            f(player, &mut self.actions);
        }
    }

    /// Nobody watches a pulled stream any more: stop the pull after the
    /// idle time unless someone comes back first.
    pub(super) fn schedule_idle_stop(&mut self, key: &StreamKey) {
        let now_ms = self.now_ms;
        let Some(Source::Pull { idle_since_ms, .. }) =
            self.streams.get_mut(key).map(|s| &mut s.source)
        else {
            return;
        };
        if idle_since_ms.is_none() {
            *idle_since_ms = Some(now_ms);
        }
        self.arm_idle_stop(key);
    }

    /// Sets the idle deadline of a pulled stream, unless one is set or it
    /// is watched: the timer queue holds one per pull, not one per time a
    /// player left.
    fn arm_idle_stop(&mut self, key: &StreamKey) {
        let wait_ms = self.config.relay.timing.idle_stop.as_millis() as u64;
        let Some(Source::Pull {
            idle_since_ms: Some(since_ms),
            idle_timer,
            ..
        }) = self.streams.get_mut(key).map(|s| &mut s.source)
        else {
            return;
        };
        if !std::mem::replace(idle_timer, true) {
            let at_ms = since_ms.saturating_add(wait_ms);
            self.deadlines
                .add(at_ms, Timer::IdleStop { key: key.clone() });
        }
    }

    /// An idle deadline came: stop the pull if nobody has watched it for
    /// the idle time, else look again when that is up.
    fn idle_deadline(&mut self, key: &StreamKey) {
        let wait_ms = self.config.relay.timing.idle_stop.as_millis() as u64;
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let unwatched = stream.is_unwatched_pull();
        let Source::Pull {
            idle_since_ms,
            idle_timer,
            ..
        } = &mut stream.source
        else {
            return;
        };
        *idle_timer = false;
        match *idle_since_ms {
            Some(since_ms) if unwatched && self.now_ms >= since_ms.saturating_add(wait_ms) => {
                self.stop_pull(key);
                self.directory.release(key, self.shard);
                self.streams.remove(key);
            }
            // Watched again meanwhile and left since: the idle time counts
            // from the last leave.
            Some(_) => self.arm_idle_stop(key),
            None => {}
        }
    }

    /// Serves every deadline up to now.
    pub(super) fn tick(&mut self) {
        while let Some((at_ms, timer)) = self.deadlines.pop_due(self.now_ms) {
            match timer {
                Timer::Hold { key } => {
                    let next = (self.streams.get_mut(&key))
                        .and_then(|stream| stream.write_held(at_ms, &mut self.actions));
                    if let Some(next) = next {
                        self.hold_until(next, &key);
                    }
                }
                Timer::Retry(retry) => {
                    let Retry {
                        conn,
                        stream_id,
                        key,
                        name,
                        waited_ms,
                    } = *retry;
                    self.publish(conn, stream_id, key, name, waited_ms);
                }
                Timer::IdleStop { key } => self.idle_deadline(&key),
            }
        }
    }
}
