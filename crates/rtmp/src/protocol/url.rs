//! RTMP URLs and the names commands carry: `rtmp://host[:port]/app/stream?query`
//! as found in `tcUrl` and on command lines, the `app` of `connect`
//! (`name[/instance][?query]`) and `name?query` strings.
//!
//! Nothing here is decoded: keys and tokens are compared as the peer wrote
//! them, so no percent decoding.

use std::fmt;

/// Splits `name?query` at the first `?`.
pub fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((name, query)) => (name, Some(query)),
        None => (s, None),
    }
}

/// The value of `key` in a `k=v&k2=v2` query string, as sent (no percent
/// decoding: keys and tokens are compared as the peer wrote them).
pub fn query_param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            None if pair == key => Some(""),
            _ => None,
        })
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

    /// Parses `rtmp[s]://host[:port][/path][?query]`; IPv6 hosts in
    /// brackets.
    pub fn parse(url: &str) -> Result<RtmpUrl, UrlError> {
        let (tls, rest) = match (url.strip_prefix("rtmp://"), url.strip_prefix("rtmps://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            (None, None) => return Err(UrlError::Scheme(url.to_owned())),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (path, query) = split_query(path);
        // [v6]:port, host:port or host.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| UrlError::BadPort(url.to_owned()))?;
                (host, port)
            }
            _ if tls => (authority, Self::DEFAULT_TLS_PORT),
            _ => (authority, Self::DEFAULT_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost(url.to_owned()));
        }
        Ok(RtmpUrl {
            tls,
            host: host.to_owned(),
            port,
            path: path.trim_matches('/').to_owned(),
            query: query.map(str::to_owned),
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
        assert_eq!(query_param("token=abc&x", "token"), Some("abc"));
        assert_eq!(query_param("token=abc&x", "x"), Some(""));
        assert_eq!(query_param("token=abc", "key"), None);
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
}
