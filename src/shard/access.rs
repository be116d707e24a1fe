//! The door on a shard: an app's static rules decide at once; a hook is
//! asked on the hook thread while the session holds the client's input,
//! and the answer is acted on when it comes. Denials are counted and
//! logged; `on_publish_done` and `on_play_done` are told when a publish or
//! a play ends.

use std::rc::Rc;

use super::Shard;
use super::connection::Conn;
use super::logs::peer_line;
use crate::access::hooks::{Event, Outcome};
use crate::access::{Action, Credentials, Verdict};
use crate::config::HookUrl;
use crate::media::StreamKey;
use crate::session::Quoted;

impl Shard {
    /// Decides whether `conn` may do `action` (on `stream_name`, as sent,
    /// for publish and play) and hands the verdict to `then`: at once, or
    /// when the hook answers.
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
        let (rule, hook) = match action {
            Action::Connect => (None, &policy.hooks.on_connect),
            Action::Publish => (Some(&policy.publish), &policy.hooks.on_publish),
            Action::Play => (Some(&policy.play), &policy.hooks.on_play),
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
        let Some(url) = hook.clone() else {
            then(self, conn, Verdict::Allow { rename: None });
            return;
        };
        let Some(shard) = self.handle() else {
            // The shard is going away: nobody to act on an answer.
            then(
                self,
                conn,
                Verdict::Deny("the server is shutting down".into()),
            );
            return;
        };
        let (timeout, fail_open) = (config.access.hook_timeout, config.access.hook_fail_open);
        let (conn, stream_name) = (conn.clone(), stream_name.to_owned());
        tokio_uring::spawn(async move {
            let event = shard.event(&conn, action_name(action, false), &app, &stream_name);
            let outcome = shard.hooks.ask(&url, &event, timeout).await;
            if !conn.is_open() {
                return;
            }
            let verdict = shard.verdict(&conn, action, &stream_name, &url, outcome, fail_open);
            then(&shard, &conn, verdict);
            conn.flush_session();
            conn.resume_reading();
        });
    }

    /// Tells the app's `on_publish_done` or `on_play_done` hook, if any,
    /// that `conn` stopped publishing or playing `key`.
    pub(super) fn tell_done(&self, conn: &Conn, action: Action, key: &StreamKey) {
        let config = self.config();
        let hooks = &config.access.policy(key.app()).hooks;
        let hook = match action {
            Action::Publish => &hooks.on_publish_done,
            Action::Play => &hooks.on_play_done,
            Action::Connect => &None,
        };
        if let Some(url) = hook {
            let event = self.event(conn, action_name(action, true), key.app(), key.name());
            if let Err(why) = self.hooks.tell(url, &event, config.access.hook_timeout) {
                let action = event.action;
                peer_line!(WARN, self, conn, shard = %self.id, peer = %conn.peer, hook = %url.redacted(), action, %why, "hook not called");
            }
        }
    }

    fn event<'a>(
        &self,
        conn: &'a Conn,
        action: &'static str,
        app: &'a str,
        stream_name: &'a str,
    ) -> Event<'a> {
        let connect_args = conn.connect_args.get().map_or("", String::as_str);
        let (stream, args) = match stream_name.split_once('?') {
            _ if action == "on_connect" => (None, connect_args),
            Some((name, query)) => (Some(name), query),
            None => (Some(stream_name), ""),
        };
        Event {
            action,
            client_id: format!("{}-{}", self.id, conn.serial),
            client: conn.peer,
            ip: conn.peer.ip().to_canonical().to_string(),
            app,
            stream,
            args,
            tc_url: conn.tc_url.get().map(String::as_str),
            protocol: conn.protocol().name(),
        }
    }

    /// The verdict a hook's outcome gives.
    fn verdict(
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
            Outcome::Refused(status) => self.denied(
                conn,
                action,
                stream_name,
                format!("hook {} answered {status}", url.redacted()),
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

/// The hook's name for an action, or for its end.
fn action_name(action: Action, done: bool) -> &'static str {
    match (action, done) {
        (Action::Connect, _) => "on_connect",
        (Action::Publish, false) => "on_publish",
        (Action::Publish, true) => "on_publish_done",
        (Action::Play, false) => "on_play",
        (Action::Play, true) => "on_play_done",
    }
}
