//! The door on a shard: an app's static rules decide at once; a hook is
//! asked on the hook thread while the session holds the client's input,
//! and the answer is acted on when it comes. Denials are counted and
//! logged. The end of a publish or a play is told (`on_publish_done`,
//! `on_play_done`, `on_done`) and so is a connection's (`on_close`);
//! `on_update` asks again about each publish and play once an interval,
//! from the shard's timer, and a refusal ends the connection.

use std::rc::Rc;

use super::Shard;
use super::connection::{CloseReason, Conn};
use super::logs::peer_line;
use super::stats::Protocol;
use crate::access::hooks::{Event, Hook, Kind, Outcome};
use crate::access::{Action, Credentials, Verdict};
use crate::config::HookUrl;
use crate::media::StreamKey;
use crate::router::ConnRef;
use crate::session::Quoted;

/// A publish or a play `on_update` asks about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Session {
    conn: ConnRef,
    key: StreamKey,
    publishing: bool,
}

impl Shard {
    /// Decides whether `conn` may do `action` (on `stream_name`, as sent,
    /// for publish and play) and hands the verdict to `then`: at once, or
    /// when every URL of the hook answered.
    pub(super) fn admit(
        &self,
        conn: &Rc<Conn>,
        action: Action,
        stream_name: &str,
        then: impl FnOnce(&Shard, &Rc<Conn>, Verdict) + 'static,
    ) {
        let config = self.config();
        let app = conn.app.borrow().clone().unwrap_or_default();
        let policy = config.access.policy(&app);
        let (rule, kind) = match action {
            Action::Connect => (None, Kind::Connect),
            Action::Publish => (Some(&policy.publish), Kind::Publish),
            Action::Play => (Some(&policy.play), Kind::Play),
        };
        if let Some(rule) = rule {
            let credentials = Credentials {
                stream_name,
                connect_args: conn.connect_args.get().map_or("", String::as_str),
            };
            if let Err(reason) = rule.check(action, conn.peer.ip(), credentials) {
                let verdict = self.denied(conn, action, stream_name, reason);
                then(self, conn, verdict);
                return;
            }
        }
        if Hook::of(&config, &app, kind).urls.is_empty() {
            then(self, conn, Verdict::Allow { rename: None });
            return;
        }
        let Some(shard) = self.handle() else {
            // The shard is going away: nobody to act on an answer.
            then(
                self,
                conn,
                Verdict::Deny("the server is shutting down".into()),
            );
            return;
        };
        let fail_open = config.access.hook_fail_open;
        let (conn, stream_name) = (conn.clone(), stream_name.to_owned());
        tokio_uring::spawn(async move {
            // The configuration asked, even if a reload comes meanwhile.
            let hook = Hook::of(&config, &app, kind);
            let event = shard.event(&conn, kind, &app, &stream_name);
            let outcomes = shard.hooks.ask(hook, &event).await;
            if !conn.is_open() {
                return;
            }
            let verdict =
                shard.verdict(&conn, action, &stream_name, hook.urls, outcomes, fail_open);
            then(&shard, &conn, verdict);
            conn.flush_session();
            conn.resume_reading();
        });
    }

    /// `conn` began publishing or playing `key`: its `on_update` calls
    /// start, if the app has that hook.
    pub(super) fn began(&self, conn: &Conn, key: &StreamKey, publishing: bool) {
        let config = self.config();
        let kind = Kind::Update {
            publishing,
            seconds: 0,
        };
        if Hook::of(&config, key.app(), kind).urls.is_empty() {
            return;
        }
        let session = Session {
            conn: conn.id(),
            key: key.clone(),
            publishing,
        };
        let interval = config.access.update_interval.as_millis() as u64;
        self.updates
            .borrow_mut()
            .start(session, self.now_ms(), interval);
        self.deadline_may_have_moved();
    }

    /// `conn` stopped publishing or playing `key`: the app's
    /// `on_publish_done` or `on_play_done` hook and its `on_done` hook are
    /// told, and its `on_update` calls stop.
    pub(super) fn tell_done(&self, conn: &Conn, action: Action, key: &StreamKey) {
        let (done, publishing) = match action {
            Action::Publish => (Kind::PublishDone, true),
            Action::Play => (Kind::PlayDone, false),
            Action::Connect => return,
        };
        self.updates.borrow_mut().stop(&Session {
            conn: conn.id(),
            key: key.clone(),
            publishing,
        });
        self.tell(conn, done, key.app(), key.name());
        self.tell(conn, Kind::Done { publishing }, key.app(), key.name());
    }

    /// `conn` ended (after its `*_done` notices): the app's `on_close`
    /// hook is told, with the bytes it read and wrote. Connections that
    /// never asked for an app (a failed handshake, a port scan) are not,
    /// nor HLS ones: an HLS player's connections carry its requests, not
    /// its session.
    pub(super) fn tell_closed(&self, conn: &Conn) {
        let app = conn.app.borrow().clone();
        let Some(app) = app.filter(|_| conn.protocol() != Protocol::Hls) else {
            return;
        };
        let kind = Kind::Close {
            bytes_in: conn.bytes_in.get(),
            bytes_out: conn.bytes_out.get(),
        };
        self.tell(conn, kind, &app, "");
    }

    /// Asks `on_update` about every session due by `now` (shard clock,
    /// ms), each at most once a call; a session whose connection went, or
    /// whose app no longer has the hook (a reload), is dropped.
    pub(super) fn ask_updates(&self, now: u64) {
        let config = self.config();
        let interval = config.access.update_interval.as_millis() as u64;
        loop {
            let due = self.updates.borrow_mut().poll_due(now, interval);
            let Some((session, started_ms)) = due else {
                return;
            };
            let kind = Kind::Update {
                publishing: session.publishing,
                seconds: now.saturating_sub(started_ms) / 1000,
            };
            let conn = (self.connections.borrow().get(session.conn.key))
                .filter(|c| c.serial == session.conn.serial && c.is_open())
                .cloned();
            let hook = Hook::of(&config, session.key.app(), kind);
            let (Some(conn), false) = (conn, hook.urls.is_empty()) else {
                self.updates.borrow_mut().stop(&session);
                continue;
            };
            self.ask_update(&conn, session.key, kind);
        }
    }

    /// Asks the `on_update` hook about `conn`'s publish or play of `key`;
    /// a refusal (in the app's format) ends the connection, a failure is
    /// counted and the session goes on (nginx-rtmp without
    /// `notify_update_strict`).
    fn ask_update(&self, conn: &Rc<Conn>, key: StreamKey, kind: Kind) {
        let Some(shard) = self.handle() else {
            return;
        };
        let conn = conn.clone();
        tokio_uring::spawn(async move {
            let config = shard.config();
            let hook = Hook::of(&config, key.app(), kind);
            let event = shard.event(&conn, kind, key.app(), key.name());
            let outcomes = shard.hooks.ask(hook, &event).await;
            if !conn.is_open() {
                return;
            }
            let action = if matches!(
                kind,
                Kind::Update {
                    publishing: true,
                    ..
                }
            ) {
                Action::Publish
            } else {
                Action::Play
            };
            for (url, outcome) in hook.urls.iter().zip(outcomes) {
                match outcome {
                    Outcome::Allowed | Outcome::Renamed(_) => {}
                    Outcome::Refused(why) => {
                        let reason = format!("on_update hook {} {why}", url.redacted());
                        shard.denied(&conn, action, key.name(), reason);
                        conn.abort(CloseReason::Revoked);
                        return;
                    }
                    Outcome::Failed(why) => {
                        shard.stats.hook_failures.add(1);
                        peer_line!(WARN, shard, conn, shard = %shard.id, peer = %conn.peer, %action, hook = %url.redacted(), %why, "on_update hook failed; the session goes on");
                    }
                }
            }
        });
    }

    /// Tells `kind`'s hook of `app`, if any, that it happened to `conn`
    /// (on `stream_name`).
    fn tell(&self, conn: &Conn, kind: Kind, app: &str, stream_name: &str) {
        let config = self.config();
        let hook = Hook::of(&config, app, kind);
        if hook.urls.is_empty() {
            return;
        }
        let event = self.event(conn, kind, app, stream_name);
        for (url, why) in self.hooks.tell(hook, &event) {
            let action = kind.hook_name();
            peer_line!(WARN, self, conn, shard = %self.id, peer = %conn.peer, hook = %url.redacted(), action, %why, "hook not called");
        }
    }

    fn event<'a>(
        &self,
        conn: &'a Conn,
        kind: Kind,
        app: &'a str,
        stream_name: &'a str,
    ) -> Event<'a> {
        let connect_args = conn.connect_args.get().map_or("", String::as_str);
        let (stream, args) = match stream_name.split_once('?') {
            _ if matches!(kind, Kind::Connect | Kind::Close { .. }) => (None, connect_args),
            Some((name, query)) => (Some(name), query),
            None => (Some(stream_name), ""),
        };
        Event {
            kind,
            client_id: format!("{}-{}", self.id, conn.serial),
            client: conn.peer,
            app,
            stream,
            args,
            tc_url: conn.tc_url.get().map(String::as_str),
            protocol: conn.protocol().name(),
            epoch: conn.accepted_ms as u32,
        }
    }

    /// The verdict every URL's outcome gives together: the first that
    /// denies decides; a rename comes from the first URL that renamed.
    fn verdict(
        &self,
        conn: &Conn,
        action: Action,
        stream_name: &str,
        urls: &[HookUrl],
        outcomes: Vec<Outcome>,
        fail_open: bool,
    ) -> Verdict {
        let mut renamed = None;
        for (url, outcome) in urls.iter().zip(outcomes) {
            match self.verdict_of(conn, action, stream_name, url, outcome, fail_open) {
                Verdict::Allow { rename } => renamed = renamed.or(rename),
                denied => return denied,
            }
        }
        Verdict::Allow { rename: renamed }
    }

    /// The verdict one URL's outcome gives.
    fn verdict_of(
        &self,
        conn: &Conn,
        action: Action,
        stream_name: &str,
        url: &HookUrl,
        outcome: Outcome,
        fail_open: bool,
    ) -> Verdict {
        match outcome {
            Outcome::Allowed => Verdict::Allow { rename: None },
            Outcome::Renamed(name) if action != Action::Connect => {
                let (from, to) = (Quoted(stream_name), Quoted(&name));
                peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %action, %from, %to, "renamed by hook");
                Verdict::Allow { rename: Some(name) }
            }
            Outcome::Renamed(_) => {
                let reason = format!(
                    "hook {} redirected a connect, which has no stream to rename",
                    url.redacted()
                );
                self.denied(conn, action, stream_name, reason)
            }
            Outcome::Refused(why) => self.denied(
                conn,
                action,
                stream_name,
                format!("hook {} {why}", url.redacted()),
            ),
            Outcome::Failed(why) => {
                self.stats.hook_failures.add(1);
                if fail_open {
                    peer_line!(WARN, self, conn, shard = %self.id, peer = %conn.peer, %action, hook = %url.redacted(), %why, "hook failed; allowed (hook_fail_open)");
                    Verdict::Allow { rename: None }
                } else {
                    self.denied(
                        conn,
                        action,
                        stream_name,
                        format!("hook {} failed: {why}", url.redacted()),
                    )
                }
            }
        }
    }

    fn denied(&self, conn: &Conn, action: Action, stream_name: &str, reason: String) -> Verdict {
        self.stats.auth_denials.add(1);
        let app = conn.app.borrow().clone().unwrap_or_default();
        let stream = stream_name.split('?').next().unwrap_or_default();
        let (app, stream) = (Quoted(&app), Quoted(stream));
        peer_line!(INFO, self, conn, shard = %self.id, peer = %conn.peer, %app, %stream, %action, %reason, "denied");
        Verdict::Deny(reason)
    }
}
