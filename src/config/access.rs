//! Who may publish and play: stream keys, address lists and HTTP hooks,
//! per app over a server-wide default. What the rules mean when a client
//! arrives is [`crate::access`]'s; here they are only read and checked.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;

use crate::limits;

/// Access rules for every app.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessConfig {
    /// The policy of apps without an `[app.NAME.access]` section.
    pub default: AccessPolicy,
    /// Per app: the default with the app's own keys laid over it.
    pub apps: BTreeMap<String, AccessPolicy>,
    /// A hook that has not answered within this is a failure.
    pub hook_timeout: Duration,
    /// A hook that fails (timeout, refused connection, malformed answer)
    /// allows instead of denying.
    pub hook_fail_open: bool,
    /// How often `on_update` is asked about each publish and play.
    pub update_interval: Duration,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            default: AccessPolicy::default(),
            apps: BTreeMap::new(),
            hook_timeout: Duration::from_millis(limits::HOOK_TIMEOUT_MS_DEFAULT),
            hook_fail_open: false,
            update_interval: Duration::from_millis(limits::HOOK_UPDATE_INTERVAL_MS_DEFAULT),
        }
    }
}

impl AccessConfig {
    /// The policy for `app`.
    pub fn policy(&self, app: &str) -> &AccessPolicy {
        self.apps.get(app).unwrap_or(&self.default)
    }
}

/// What one app requires of its publishers and players.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccessPolicy {
    pub publish: Rule,
    pub play: Rule,
    pub hooks: HookUrls,
    /// How the hooks are worded and their answers read.
    pub hook_format: HookFormat,
}

/// The family a hook service was written for: what it is sent and how its
/// answer is read ([`crate::access::formats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookFormat {
    /// ringcast's JSON; any 2xx allows, a 3xx with a `Location` renames.
    #[default]
    Ringcast,
    /// SRS's `http_hooks` JSON and event names; 200 with `0` or
    /// `{"code":0}` allows, anything else denies.
    Srs,
    /// nginx-rtmp's `notify` form and `call=` names; 2xx allows, 3xx
    /// renames (or goes on without a `Location`).
    Nginx,
}

/// Requirements for publishing or for playing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rule {
    /// One of these must come as `?key=` in the stream name, the app or
    /// the tcUrl; empty: no key needed.
    pub keys: Vec<String>,
    /// Addresses allowed; empty: every address not denied.
    pub allow: Vec<Network>,
    /// Addresses refused, whatever `allow` says.
    pub deny: Vec<Network>,
}

/// Where each event is POSTed; empty: not asked. A hook asked before a
/// client goes ahead needs every URL's allow; a notice goes to them all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HookUrls {
    pub on_connect: Vec<HookUrl>,
    pub on_publish: Vec<HookUrl>,
    pub on_play: Vec<HookUrl>,
    pub on_publish_done: Vec<HookUrl>,
    pub on_play_done: Vec<HookUrl>,
    /// The end of a publish or a play, whichever (nginx-rtmp's `on_done`).
    pub on_done: Vec<HookUrl>,
    /// Each publish and play, every `access.update_interval_ms`: a refusal
    /// ends it.
    pub on_update: Vec<HookUrl>,
    /// The end of a connection, after its `*_done` notices.
    pub on_close: Vec<HookUrl>,
    /// Told of each finished recording file.
    pub on_record_done: Vec<HookUrl>,
}

impl HookUrls {
    /// Every hook with its key (`on_connect`), in the file's order.
    pub fn each(&self) -> [(&'static str, &Vec<HookUrl>); 9] {
        [
            ("on_connect", &self.on_connect),
            ("on_publish", &self.on_publish),
            ("on_play", &self.on_play),
            ("on_publish_done", &self.on_publish_done),
            ("on_play_done", &self.on_play_done),
            ("on_done", &self.on_done),
            ("on_update", &self.on_update),
            ("on_close", &self.on_close),
            ("on_record_done", &self.on_record_done),
        ]
    }
}

/// An address block as written in a list: `10.0.0.0/8`, `2001:db8::/32`,
/// or one address (`192.0.2.7`, a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network(pub IpNet);

impl Network {
    /// Whether `ip` is in the block; an IPv4 peer that arrived on an IPv6
    /// socket (`::ffff:192.0.2.7`) counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Network, String> {
        let text = text.trim();
        if let Ok(net) = text.parse::<IpNet>() {
            // `10.1.2.3/8` means the block: keep the operator's intent
            // visible without host bits that match nothing extra.
            return Ok(Network(net.trunc()));
        }
        text.parse::<IpAddr>()
            .map(|ip| Network(IpNet::from(ip)))
            .map_err(|_| "is not an address or a block like 10.0.0.0/8".to_owned())
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An `http[s]://host[:port]/path` a hook is POSTed to; an `https://`
/// one's certificate is verified as relays verify theirs (the public roots
/// and `[tls] ca_file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookUrl(http::Uri);

impl HookUrl {
    pub fn uri(&self) -> &http::Uri {
        &self.0
    }
}

impl FromStr for HookUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<HookUrl, String> {
        let uri: http::Uri = text
            .trim()
            .parse()
            .map_err(|e| format!("is not a URL: {e}"))?;
        // `Uri` takes `HTTP://` and `https://` in any case as the
        // standard schemes.
        match (uri.scheme_str(), uri.authority()) {
            (Some("http" | "https"), Some(_)) => Ok(HookUrl(uri)),
            _ => Err("is not an http[s]://host[:port]/path URL".into()),
        }
    }
}

impl HookUrl {
    /// The URL for logs: a query, which often carries the hook service's
    /// shared secret, shows as `?****`.
    pub fn redacted(&self) -> Redacted<'_> {
        Redacted(&self.0)
    }
}

/// The whole URL, as configured (`--print-config` writes it back).
impl fmt::Display for HookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A hook URL for logs: see [`HookUrl::redacted`].
pub struct Redacted<'a>(pub &'a http::Uri);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = self.0;
        let scheme = uri.scheme_str().unwrap_or("http");
        let host = uri.authority().map_or("", |a| a.as_str());
        // Userinfo (`user:pass@`) is a secret too.
        let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
        write!(f, "{scheme}://{host}{}", uri.path())?;
        if uri.query().is_some() {
            f.write_str("?****")?;
        }
        Ok(())
    }
}
