//! RTMP URLs and the names commands carry: `rtmp://host[:port]/app/stream?query`
//! as found in `tcUrl` and on command lines, the `app` of `connect`
//! (`name[/instance][?query]`) and `name?query` strings.
//!
//! Names stay as the peer wrote them: RTMP sends a stream name verbatim
//! (ffmpeg and librtmp put what follows the app in `publish` or `play`
//! as it is in the URL), so a path is never decoded. Query *values* are
//! percent-decoded where they are read ([`query_values`]): a key sent as
//! `?key=a%2Bb` is the key `a+b`.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;

/// Splits `name?query` at the first `?`.
pub fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((name, query)) => (name, Some(query)),
        None => (s, None),
    }
}

/// The values of `name` in a `k=v&k2=v2` query string, percent-decoded
/// (RFC 3986 §2.1). A `+` stays a `+`: RTMP clients write keys into URLs
/// by hand, and `?key=a+b` means the key `a+b`, not form encoding's
/// space. Bytes that do not decode to UTF-8 are replaced, so such a value
/// matches no configured key.
pub fn query_values<'q>(query: &'q str, name: &'q str) -> impl Iterator<Item = Cow<'q, str>> {
    query
        .split('&')
        .filter_map(move |pair| pair.split_once('=').filter(|(k, _)| *k == name))
        .map(|(_, value)| percent_decode_str(value).decode_utf8_lossy())
}

/// The `app` of `connect`: `name[/instance][?query]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppName {
    /// The application (`live`).
    pub name: String,
    /// What follows the first `/`, if anything.
    pub instance: Option<String>,
    /// What follows the first `?`, as sent.
    pub query: Option<String>,
}

impl AppName {
    /// Splits `app` into name, instance and query; leading and trailing
    /// slashes of the path are dropped. Any string is a name.
    pub fn parse(app: &str) -> AppName {
        let (path, query) = split_query(app);
        let path = path.trim_matches('/');
        let (name, instance) = match path.split_once('/') {
            Some((name, instance)) => (name, Some(instance.to_owned())),
            None => (path, None),
        };
        AppName {
            name: name.to_owned(),
            instance,
            query: query.map(str::to_owned),
        }
    }
}

/// An `rtmp://host[:port]/app[/instance][/stream][?query]` URL, as found in
/// `tcUrl` and on command lines; `rtmps://` is the same over TLS.
///
/// Parsed by [`http::Uri`], which keeps the path and query as written.
/// Not by the `url` crate: WHATWG parsing rewrites what it does not like
/// (`{` and `}` percent-encoded, so a push target's `{name}` would be lost;
/// `.` and `..` segments resolved), where RTMP sends a stream name exactly
/// as the URL spells it. Userinfo (`rtmp://user:pass@host/app`) is taken
/// and ignored: RTMP has no standard way to send it, and neither ffmpeg nor
/// nginx-rtmp does; the scheme is matched in any case (`RTMP://`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: the connection is TLS, the host's certificate verified.
    pub tls: bool,
    /// The host, without the brackets of an IPv6 literal.
    pub host: String,
    /// The port, [`RtmpUrl::DEFAULT_PORT`] when the URL names none.
    pub port: u16,
    /// The path after the host, without leading slash or query.
    pub path: String,
    /// What follows the first `?`, as sent.
    pub query: Option<String>,
}

/// Why an RTMP URL could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an `rtmp://` or `rtmps://` URL.
    #[error("url {0:?} does not start with rtmp:// or rtmps://")]
    Scheme(String),
    /// Nothing between `rtmp://` and the path.
    #[error("url {0:?} has no host")]
    NoHost(String),
    /// A port that is not a number in 0..=65535.
    #[error("url {0:?} has a bad port")]
    BadPort(String),
    /// Not a URL at all: a space or a control character, a bad host.
    #[error("url {0:?} is malformed: {1} (percent-encode spaces and the like)")]
    Malformed(String, String),
    /// A `#`, which would start a fragment: silently dropping what follows
    /// would publish or play another name.
    #[error("url {0:?} has a # (a fragment); write a # in a name as %23")]
    Fragment(String),
}

impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rtmps" } else { "rtmp" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)?;
        }
        if !self.path.is_empty() {
            write!(f, "/{}", self.path)?;
        }
        match &self.query {
            Some(query) => write!(f, "?{query}"),
            None => Ok(()),
        }
    }
}

impl RtmpUrl {
    /// The default RTMP port.
    pub const DEFAULT_PORT: u16 = 1935;

    /// The default RTMPS port, as ffmpeg, OBS and the platforms use it.
    pub const DEFAULT_TLS_PORT: u16 = 443;

    /// Parses `rtmp[s]://[userinfo@]host[:port][/path][?query]`; IPv6
    /// hosts in brackets; the scheme in any case.
    pub fn parse(url: &str) -> Result<RtmpUrl, UrlError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => false,
            "rtmps" => true,
            _ => return Err(UrlError::Scheme(url.to_owned())),
        };
        if url.contains('#') {
            return Err(UrlError::Fragment(url.to_owned()));
        }
        // `rtmp:///app`: the URI grammar allows an empty authority only
        // where it means something; here it is a host left out.
        if rest.is_empty() || rest.starts_with(['/', '?']) {
            return Err(UrlError::NoHost(url.to_owned()));
        }
        let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| {
            UrlError::Malformed(url.to_owned(), e.to_string())
        })?;
        let authority = uri
            .authority()
            .ok_or_else(|| UrlError::NoHost(url.to_owned()))?;
        // Userinfo is ignored (see the type's documentation). The port is
        // read here: `Authority::port` takes an out-of-range one for none.
        let host_port = authority
            .as_str()
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, host)| host);
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| UrlError::BadPort(url.to_owned()))?;
                (host, port)
            }
            _ if tls => (host_port, Self::DEFAULT_TLS_PORT),
            _ => (host_port, Self::DEFAULT_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost(url.to_owned()));
        }
        Ok(RtmpUrl {
            tls,
            host: host.to_owned(),
            port,
            path: uri.path().trim_matches('/').to_owned(),
            query: uri.query().map(str::to_owned),
        })
    }

    /// The first path segment: the app a client connects to.
    pub fn app(&self) -> &str {
        self.path.split('/').next().unwrap_or_default()
    }

    /// What follows the app: the stream name (with the URL's query, which
    /// players pass through for auth), if the URL names one.
    pub fn stream(&self) -> Option<String> {
        let (_, stream) = self.path.split_once('/')?;
        if stream.is_empty() {
            return None;
        }
        Some(match &self.query {
            Some(q) => format!("{stream}?{q}"),
            None => stream.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_queries_split() {
        assert_eq!(split_query("cam?token=abc&x"), ("cam", Some("token=abc&x")));
        let values = |query, name| query_values(query, name).collect::<Vec<_>>();
        assert_eq!(values("token=abc&x=&token=d", "token"), ["abc", "d"]);
        assert_eq!(values("token=abc&x=", "x"), [""]);
        assert!(
            values("token=abc&x", "x").is_empty(),
            "a bare name has no value"
        );
        assert!(values("mykey=abc", "key").is_empty());
        assert_eq!(
            AppName::parse("live/inst?key=1"),
            AppName {
                name: "live".into(),
                instance: Some("inst".into()),
                query: Some("key=1".into())
            }
        );
    }

    #[test]
    fn rtmp_urls_parse_host_port_app_and_stream() {
        let url = RtmpUrl::parse("rtmp://127.0.0.1:1936/live/cam?token=x").expect("valid");
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 1936));
        assert_eq!(url.app(), "live");
        assert_eq!(url.stream().as_deref(), Some("cam?token=x"));
        let url = RtmpUrl::parse("rtmp://[::1]/live").expect("valid");
        assert_eq!(
            (url.host.as_str(), url.port, url.stream()),
            ("::1", 1935, None)
        );
        assert_eq!(
            RtmpUrl::parse("http://x/live"),
            Err(UrlError::Scheme("http://x/live".into()))
        );
        assert!(matches!(
            RtmpUrl::parse("rtmp://x:99999/a"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            RtmpUrl::parse("rtmp:///a"),
            Err(UrlError::NoHost(_))
        ));
    }

    #[test]
    fn rtmps_urls_say_tls_default_to_443_and_print_back() {
        let url = RtmpUrl::parse("rtmps://live.example.com/app/key").expect("valid");
        assert!(url.tls);
        assert_eq!((url.host.as_str(), url.port), ("live.example.com", 443));
        assert_eq!(url.to_string(), "rtmps://live.example.com:443/app/key");
        let url = RtmpUrl::parse("rtmps://[::1]:1936/live").expect("valid");
        assert_eq!((url.tls, url.port), (true, 1936));
        assert_eq!(RtmpUrl::parse(&url.to_string()), Ok(url));
        assert!(!RtmpUrl::parse("rtmp://h/a").expect("valid").tls);
        assert!(matches!(
            RtmpUrl::parse("rtmpt://h/a"),
            Err(UrlError::Scheme(_))
        ));
    }

    #[test]
    fn query_values_are_percent_decoded_but_plus_stays_plus() {
        let values = |query| query_values(query, "key").collect::<Vec<_>>();
        assert_eq!(values("key=a%2Bb"), ["a+b"]);
        assert_eq!(values("key=a+b"), ["a+b"], "not form encoding");
        assert_eq!(values("key=%E2%9C%93&key=%zz"), ["\u{2713}", "%zz"]);
        assert_eq!(
            values("key=%FF"),
            ["\u{fffd}"],
            "not UTF-8: matches nothing"
        );
    }

    #[test]
    fn urls_take_userinfo_and_any_case_of_scheme() {
        let url =
            RtmpUrl::parse("rtmp://user:p%40ss@origin.example:1936/live/cam?k=1").expect("valid");
        assert_eq!(
            (
                url.host.as_str(),
                url.port,
                url.path.as_str(),
                url.query.as_deref()
            ),
            ("origin.example", 1936, "live/cam", Some("k=1")),
        );
        assert_eq!(
            url.to_string(),
            "rtmp://origin.example:1936/live/cam?k=1",
            "userinfo is not kept"
        );
        let url = RtmpUrl::parse("RTMPS://User@[::1]/Live").expect("valid");
        assert_eq!((url.tls, url.host.as_str(), url.port), (true, "::1", 443));
        assert_eq!(url.app(), "Live", "the path keeps its case");
        assert!(!RtmpUrl::parse("Rtmp://h/a").expect("valid").tls);
    }

    #[test]
    fn paths_stay_as_written() {
        let url = RtmpUrl::parse("rtmp://b/live/{name}-edge").expect("valid");
        assert_eq!(url.stream().as_deref(), Some("{name}-edge"));
        let url = RtmpUrl::parse("rtmp://b/live/./a%20b?key=x/y").expect("valid");
        assert_eq!(
            url.path, "live/./a%20b",
            "no dot segments resolved, nothing decoded"
        );
        assert_eq!(url.query.as_deref(), Some("key=x/y"));
        assert!(matches!(
            RtmpUrl::parse("rtmp://b/live/my cam"),
            Err(UrlError::Malformed(..))
        ));
        assert!(matches!(
            RtmpUrl::parse("rtmp://b/live/cam#2"),
            Err(UrlError::Fragment(_))
        ));
        assert!(matches!(
            RtmpUrl::parse("rtmp://user@/live"),
            Err(UrlError::Malformed(..))
        ));
    }
}
