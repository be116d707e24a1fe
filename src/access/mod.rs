//! Access control at the door: who may connect, publish and play.
//!
//! - [`Rule::check`]: an app's static rules (address lists, stream keys),
//!   decided on the shard at once.
//! - [`hooks`]: HTTP callbacks in the manner of nginx-rtmp and SRS, called
//!   from a thread of their own; the shard waits for the answer without
//!   blocking (the session holds the client's input meanwhile).
//! - [`formats`]: what a hook is sent and how its answer is read, in
//!   ringcast's, SRS's or nginx-rtmp's words (pure).
//! - [`updates`]: when each publish and play is due its `on_update` call
//!   (pure; the shard's timer serves it).
//! - [`peers`]: connections per IP address, across shards.
//!
//! The rules themselves are configuration ([`crate::config::AccessConfig`]),
//! reloaded without a restart.

pub mod formats;
pub mod hooks;
pub mod peers;
pub mod updates;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use crate::config::Rule;
use crate::protocol::url::query_values;

/// What a client asks to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Connect,
    Publish,
    Play,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Connect => "connect",
            Action::Publish => "publish",
            Action::Play => "play",
        })
    }
}

/// The answer for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead; a hook may have given the stream another name.
    Allow { rename: Option<String> },
    /// Refused, and why (for the log and the client's status).
    Deny(String),
}

/// Where a client may have put a key: the stream name's query, the
/// `connect` app's query, the tcUrl's query.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    pub stream_name: &'a str,
    pub connect_args: &'a str,
}

impl Credentials<'_> {
    /// Every `key=` value the client sent, stream name first,
    /// percent-decoded.
    fn keys(&self) -> impl Iterator<Item = Cow<'_, str>> {
        let stream_query = self.stream_name.split_once('?').map_or("", |(_, q)| q);
        query_values(stream_query, "key").chain(query_values(self.connect_args, "key"))
    }
}

impl Rule {
    /// Checks `peer` against the address lists (deny first, then allow)
    /// and, when the rule lists keys, that one of them was given.
    pub fn check(
        &self,
        action: Action,
        peer: IpAddr,
        credentials: Credentials,
    ) -> Result<(), String> {
        if let Some(net) = self.deny.iter().find(|net| net.contains(peer)) {
            return Err(format!("{action} from {peer} is denied ({net})"));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|net| net.contains(peer)) {
            return Err(format!(
                "{action} from {peer} is not in the allowed addresses"
            ));
        }
        if self.keys.is_empty() {
            return Ok(());
        }
        let mut given = credentials.keys().peekable();
        if given.peek().is_none() {
            return Err(format!("{action} needs a key (?key=…)"));
        }
        if given.any(|key| self.keys.iter().any(|known| same_secret(known, &key))) {
            Ok(())
        } else {
            Err(format!("{action} with a wrong key"))
        }
    }
}

/// Compares secrets in time that depends on their lengths only, so a
/// client cannot find a key byte by byte by timing the answers.
fn same_secret(known: &str, given: &str) -> bool {
    known.len() == given.len()
        && known
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Network;

    fn net(text: &str) -> Network {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn named(stream_name: &str) -> Credentials<'_> {
        Credentials {
            stream_name,
            connect_args: "",
        }
    }

    #[test]
    fn an_empty_rule_admits_everyone() {
        let rule = Rule::default();
        assert_eq!(
            rule.check(Action::Play, ip("203.0.113.9"), named("cam")),
            Ok(())
        );
    }

    #[test]
    fn deny_wins_over_allow_and_allow_is_exclusive() {
        let rule = Rule {
            allow: vec![net("10.0.0.0/8")],
            deny: vec![net("10.9.0.0/16")],
            ..Rule::default()
        };
        assert_eq!(
            rule.check(Action::Publish, ip("10.1.2.3"), named("cam")),
            Ok(())
        );
        assert_eq!(
            rule.check(Action::Publish, ip("10.9.2.3"), named("cam")),
            Err("publish from 10.9.2.3 is denied (10.9.0.0/16)".into())
        );
        assert_eq!(
            rule.check(Action::Publish, ip("192.0.2.1"), named("cam")),
            Err("publish from 192.0.2.1 is not in the allowed addresses".into())
        );
        assert_eq!(
            rule.check(Action::Publish, ip("::ffff:10.9.0.1"), named("cam")),
            Err("publish from ::ffff:10.9.0.1 is denied (10.9.0.0/16)".into()),
            "an IPv4 peer on an IPv6 socket is matched as IPv4"
        );
    }

    #[test]
    fn a_key_may_come_in_the_stream_name_or_the_connect_arguments() {
        let rule = Rule {
            keys: vec!["s3cret".into(), "other".into()],
            ..Rule::default()
        };
        let peer = ip("127.0.0.1");
        assert_eq!(
            rule.check(Action::Publish, peer, named("cam?key=s3cret")),
            Ok(())
        );
        assert_eq!(
            rule.check(Action::Publish, peer, named("cam?a=1&key=other")),
            Ok(())
        );
        let in_url = Credentials {
            stream_name: "cam",
            connect_args: "user=x&key=s3cret",
        };
        assert_eq!(rule.check(Action::Publish, peer, in_url), Ok(()));
        assert_eq!(
            rule.check(Action::Publish, peer, named("cam")),
            Err("publish needs a key (?key=…)".into())
        );
        assert_eq!(
            rule.check(Action::Play, peer, named("cam?key=s3cre")),
            Err("play with a wrong key".into())
        );
        assert_eq!(
            rule.check(Action::Play, peer, named("cam?mykey=s3cret")),
            Err("play needs a key (?key=…)".into()),
            "only the key parameter counts"
        );
    }

    #[test]
    fn keys_are_compared_percent_decoded() {
        let rule = Rule {
            keys: vec!["a+b".into()],
            ..Rule::default()
        };
        let peer = ip("127.0.0.1");
        assert_eq!(
            rule.check(Action::Play, peer, named("cam?key=a%2Bb")),
            Ok(())
        );
        assert_eq!(rule.check(Action::Play, peer, named("cam?key=a+b")), Ok(()));
        let in_url = Credentials {
            stream_name: "cam",
            connect_args: "key=a%2bb",
        };
        assert_eq!(rule.check(Action::Play, peer, in_url), Ok(()));
        assert_eq!(
            rule.check(Action::Play, peer, named("cam?key=a%20b")),
            Err("play with a wrong key".into())
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
