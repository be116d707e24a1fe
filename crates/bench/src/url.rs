//! The stream a bench plays, as `--url` names it: over RTMP
//! (`rtmp://host[:port]/app/stream[?query]`), HTTP-FLV
//! (`http://host[:port]/app/stream.flv[?query]`), WebSocket-FLV
//! (`ws://host[:port]/app/stream.flv[?query]`) or Low-Latency HLS
//! (`http://host[:port]/app/stream.m3u8[?query]`), each also over TLS
//! (`rtmps://`, `https://`, `wss://`; port 443 unless named); and where
//! its publishers publish, always over plain RTMP.
//!
//! Nothing is percent-decoded: names and queries go back to the server as
//! the user wrote them, as with [`RtmpUrl`].

use std::fmt;

use ringcast_rtmp::protocol::url::{RtmpUrl, split_query};

/// How players play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    /// `GET /app/stream.flv`, the FLV stream as the response body.
    HttpFlv,
    /// The same stream in WebSocket binary frames (RFC 6455).
    WsFlv,
    /// `GET /app/stream.m3u8`: the media playlist, then its init segment
    /// and parts (CMAF), as a Low-Latency HLS player fetches them
    /// (RFC 8216bis).
    Hls,
}

impl Protocol {
    /// The URL scheme, over TLS or not.
    pub fn scheme(self, tls: bool) -> &'static str {
        match (self, tls) {
            (Protocol::Rtmp, false) => "rtmp",
            (Protocol::Rtmp, true) => "rtmps",
            (Protocol::HttpFlv | Protocol::Hls, false) => "http",
            (Protocol::HttpFlv | Protocol::Hls, true) => "https",
            (Protocol::WsFlv, false) => "ws",
            (Protocol::WsFlv, true) => "wss",
        }
    }
}

/// A parsed `--url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamUrl {
    pub protocol: Protocol,
    /// `rtmps://`, `https://` or `wss://`: the protocol over TLS.
    pub tls: bool,
    /// Without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// The RTMP app; for HTTP, the path between the host and the stream
    /// (`live`, or `a/b` for `/a/b/stream.flv`).
    pub app: String,
    /// The stream name, without `.flv` (`.m3u8`) and query.
    pub stream: String,
    /// What follows the first `?`, as written (tokens for the server).
    pub query: Option<String>,
}

/// Why `--url` cannot be played.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{url}: not a stream URL (rtmp://, rtmps://, http://, https://, ws:// or wss://)")]
    Scheme { url: String },
    #[error("{url}: no host")]
    NoHost { url: String },
    #[error("{url}: bad port")]
    BadPort { url: String },
    #[error("{url}: spaces or control characters (percent-encode them)")]
    Unsafe { url: String },
    #[error("{url}: names no stream ({shape})")]
    NoStream { url: String, shape: &'static str },
    /// An RTMP URL the URL parser refused for another reason.
    #[error(transparent)]
    Rtmp(ringcast_rtmp::protocol::url::UrlError),
}

/// Port of an `http://` or `ws://` URL that names none (RFC 9110 §4.2.1,
/// RFC 6455 §3); a ringcast server listens on 8080 unless told otherwise,
/// so a URL for one names its port.
const HTTP_DEFAULT_PORT: u16 = 80;
/// Port of an `https://` or `wss://` URL that names none (the same
/// RFCs); `rtmps://` defaults to it too ([`RtmpUrl::DEFAULT_TLS_PORT`]).
const HTTPS_DEFAULT_PORT: u16 = 443;

impl StreamUrl {
    /// The name of publisher `index`'s stream when several publish:
    /// `STREAM-index`.
    pub fn numbered(stream: &str, index: usize) -> String {
        format!("{stream}-{index}")
    }

    /// This URL with the stream of publisher `index` ([`StreamUrl::numbered`]),
    /// the query kept after it.
    pub fn publisher(&self, index: usize) -> StreamUrl {
        StreamUrl {
            stream: StreamUrl::numbered(&self.stream, index),
            ..self.clone()
        }
    }

    pub fn parse(url: &str) -> Result<StreamUrl, UrlError> {
        let (scheme, _) = url.split_once("://").unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "rtmp" | "rtmps" => Self::parse_rtmp(url),
            "http" => Self::parse_web(url, Protocol::HttpFlv, false),
            "https" => Self::parse_web(url, Protocol::HttpFlv, true),
            "ws" => Self::parse_web(url, Protocol::WsFlv, false),
            "wss" => Self::parse_web(url, Protocol::WsFlv, true),
            _ => Err(UrlError::Scheme { url: url.into() }),
        }
    }

    /// The URL's scheme: the protocol's, with an `s` over TLS.
    pub fn scheme(&self) -> &'static str {
        self.protocol.scheme(self.tls)
    }

    fn parse_rtmp(url: &str) -> Result<StreamUrl, UrlError> {
        let no_stream = || UrlError::NoStream {
            url: url.into(),
            shape: "rtmp[s]://host:port/app/stream",
        };
        let parsed = RtmpUrl::parse(url).map_err(|e| match e {
            ringcast_rtmp::protocol::url::UrlError::BadPort(_) => {
                UrlError::BadPort { url: url.into() }
            }
            ringcast_rtmp::protocol::url::UrlError::NoHost(_) => {
                UrlError::NoHost { url: url.into() }
            }
            ringcast_rtmp::protocol::url::UrlError::Scheme(_) => {
                UrlError::Scheme { url: url.into() }
            }
            other => UrlError::Rtmp(other),
        })?;
        let (app, stream) = parsed.path.split_once('/').ok_or_else(no_stream)?;
        if app.is_empty() || stream.is_empty() {
            return Err(no_stream());
        }
        Ok(StreamUrl {
            protocol: Protocol::Rtmp,
            tls: parsed.tls,
            host: parsed.host.clone(),
            port: parsed.port,
            app: app.to_owned(),
            stream: stream.to_owned(),
            query: parsed.query.clone(),
        })
    }

    /// An HTTP or WebSocket URL; over HTTP, a path ending in `.m3u8`
    /// makes `protocol` HLS.
    fn parse_web(url: &str, protocol: Protocol, tls: bool) -> Result<StreamUrl, UrlError> {
        let no_stream = || UrlError::NoStream {
            url: url.into(),
            shape: match protocol {
                Protocol::WsFlv => "ws[s]://host:port/app/stream.flv",
                _ => "http[s]://host:port/app/stream.flv or .m3u8",
            },
        };
        // The request line would break on them.
        if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Unsafe { url: url.into() });
        }
        let (_, rest) = url.split_once("://").unwrap_or_default();
        let (rest, query) = split_query(rest);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse()
                    .map_err(|_| UrlError::BadPort { url: url.into() })?;
                (host, port)
            }
            _ if tls => (authority, HTTPS_DEFAULT_PORT),
            _ => (authority, HTTP_DEFAULT_PORT),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost { url: url.into() });
        }
        let (app, file) = path.rsplit_once('/').ok_or_else(no_stream)?;
        let (protocol, stream) = match (protocol, file.strip_suffix(".m3u8")) {
            (Protocol::HttpFlv, Some(stream)) => (Protocol::Hls, stream),
            _ => (protocol, file.strip_suffix(".flv").ok_or_else(no_stream)?),
        };
        if app.is_empty() || stream.is_empty() {
            return Err(no_stream());
        }
        Ok(StreamUrl {
            protocol,
            tls,
            host: host.to_owned(),
            port,
            app: app.to_owned(),
            stream: stream.to_owned(),
            query: query.map(str::to_owned),
        })
    }

    /// The host and port as a `Host` header names them.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The plain RTMP URL of the same host, app, stream and query on the
    /// default RTMP port: where publishers publish when nothing else is
    /// said.
    pub fn default_publish_url(&self) -> String {
        let query = self
            .query
            .as_ref()
            .map_or(String::new(), |q| format!("?{q}"));
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!(
            "rtmp://{host}:{}/{}/{}{query}",
            RtmpUrl::DEFAULT_PORT,
            self.app,
            self.stream
        )
    }
}

impl fmt::Display for StreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.protocol {
            Protocol::Rtmp => "",
            Protocol::HttpFlv | Protocol::WsFlv => ".flv",
            Protocol::Hls => ".m3u8",
        };
        write!(
            f,
            "{}://{}/{}/{}{suffix}",
            self.scheme(),
            self.authority(),
            self.app,
            self.stream
        )?;
        match &self.query {
            Some(query) => write!(f, "?{query}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (Protocol, String, u16, String, String, Option<String>) {
        let u = StreamUrl::parse(url).expect("valid");
        (u.protocol, u.host, u.port, u.app, u.stream, u.query)
    }

    #[test]
    fn every_scheme_names_host_port_app_stream_and_query() {
        assert_eq!(
            parts("rtmp://127.0.0.1:1936/live/cam?token=x"),
            (
                Protocol::Rtmp,
                "127.0.0.1".into(),
                1936,
                "live".into(),
                "cam".into(),
                Some("token=x".into())
            )
        );
        assert_eq!(
            parts("http://example.com:8080/live/cam.flv?token=x"),
            (
                Protocol::HttpFlv,
                "example.com".into(),
                8080,
                "live".into(),
                "cam".into(),
                Some("token=x".into())
            )
        );
        assert_eq!(
            parts("ws://[::1]/a/b/cam.flv"),
            (
                Protocol::WsFlv,
                "::1".into(),
                80,
                "a/b".into(),
                "cam".into(),
                None
            )
        );
    }

    #[test]
    fn urls_print_back_as_given_with_their_port() {
        for url in [
            "rtmp://127.0.0.1:1935/live/cam?k=1",
            "http://h:8080/live/cam.flv?k=1",
            "ws://[::1]:80/live/cam.flv",
        ] {
            assert_eq!(StreamUrl::parse(url).expect("valid").to_string(), url);
        }
    }

    #[test]
    fn tls_schemes_say_tls_and_default_to_port_443() {
        for (url, protocol) in [
            ("rtmps://live.example.com/live/cam", Protocol::Rtmp),
            ("https://live.example.com/live/cam.flv", Protocol::HttpFlv),
            ("wss://live.example.com/live/cam.flv", Protocol::WsFlv),
        ] {
            let parsed = StreamUrl::parse(url).expect("valid");
            assert_eq!(
                (parsed.protocol, parsed.tls, parsed.port),
                (protocol, true, 443),
                "{url}"
            );
            assert_eq!(
                (parsed.host.as_str(), parsed.app.as_str()),
                ("live.example.com", "live")
            );
            assert_eq!(parsed.stream, "cam");
            assert_eq!(parsed.authority(), "live.example.com:443");
        }
        for url in [
            "rtmp://h/live/cam",
            "http://h/live/cam.flv",
            "ws://h/live/cam.flv",
        ] {
            assert!(!StreamUrl::parse(url).expect("valid").tls, "{url}");
        }
    }

    #[test]
    fn tls_urls_keep_their_port_query_and_app_path_and_print_back() {
        assert_eq!(
            parts("rtmps://127.0.0.1:1936/live/cam?key=k"),
            (
                Protocol::Rtmp,
                "127.0.0.1".into(),
                1936,
                "live".into(),
                "cam".into(),
                Some("key=k".into())
            )
        );
        assert_eq!(
            parts("wss://[::1]:8443/a/b/cam.flv"),
            (
                Protocol::WsFlv,
                "::1".into(),
                8443,
                "a/b".into(),
                "cam".into(),
                None
            )
        );
        for url in [
            "rtmps://127.0.0.1:1936/live/cam?k=1",
            "https://h:8443/live/cam.flv?k=1",
            "wss://[::1]:443/live/cam.flv",
        ] {
            assert_eq!(StreamUrl::parse(url).expect("valid").to_string(), url);
        }
        assert_eq!(
            StreamUrl::parse("https://h/live/cam.flv")
                .expect("valid")
                .to_string(),
            "https://h:443/live/cam.flv"
        );
        assert_eq!(
            StreamUrl::parse("HTTPS://h/live/cam.flv")
                .expect("valid")
                .scheme(),
            "https"
        );
    }

    #[test]
    fn tls_urls_without_a_stream_host_or_port_are_refused() {
        for url in ["rtmps://h/live", "https://h/live/cam", "wss://h/cam.flv"] {
            assert!(
                matches!(StreamUrl::parse(url), Err(UrlError::NoStream { .. })),
                "{url}"
            );
        }
        assert!(matches!(
            StreamUrl::parse("rtmps://h:70000/live/cam"),
            Err(UrlError::BadPort { .. })
        ));
        assert!(matches!(
            StreamUrl::parse("wss://:443/live/cam.flv"),
            Err(UrlError::NoHost { .. })
        ));
        assert!(matches!(
            StreamUrl::parse("https://h/live/cam.flv?a b"),
            Err(UrlError::Unsafe { .. })
        ));
    }

    #[test]
    fn other_schemes_are_refused_naming_the_ones_played() {
        for url in [
            "srt://h/x",
            "rtmpt://h/live/cam",
            "h/live/cam",
            "ftps://h/a/b.flv",
        ] {
            let error = StreamUrl::parse(url).expect_err("refused");
            assert_eq!(error, UrlError::Scheme { url: url.into() });
            assert!(error.to_string().contains("rtmps://"), "{error}");
        }
    }

    #[test]
    fn urls_without_a_stream_host_or_port_are_refused() {
        for url in [
            "http://h/live/cam",
            "http://h/cam.flv",
            "http://h/live/.flv",
            "ws://h",
            "rtmp://h/live",
            "rtmp://h/live/",
        ] {
            assert!(
                matches!(StreamUrl::parse(url), Err(UrlError::NoStream { .. })),
                "{url}"
            );
        }
        assert!(matches!(
            StreamUrl::parse("http://:80/live/cam.flv"),
            Err(UrlError::NoHost { .. })
        ));
        assert!(matches!(
            StreamUrl::parse("ws://h:99999/live/cam.flv"),
            Err(UrlError::BadPort { .. })
        ));
        assert!(matches!(
            StreamUrl::parse("http://h/live/cam.flv?a b"),
            Err(UrlError::Unsafe { .. })
        ));
        assert!(matches!(
            StreamUrl::parse("http://h/live/c\r\nX: y.flv"),
            Err(UrlError::Unsafe { .. })
        ));
    }

    #[test]
    fn an_m3u8_path_over_http_or_https_is_hls() {
        assert_eq!(
            parts("http://h:8080/live/cam.m3u8?token=x"),
            (
                Protocol::Hls,
                "h".into(),
                8080,
                "live".into(),
                "cam".into(),
                Some("token=x".into())
            )
        );
        let url = StreamUrl::parse("HTTPS://[::1]/a/b/cam.m3u8").expect("valid");
        assert_eq!(
            (url.protocol, url.tls, url.port, url.app.as_str()),
            (Protocol::Hls, true, 443, "a/b")
        );
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.default_publish_url(), "rtmp://[::1]:1935/a/b/cam");
        for url in [
            "http://h:8080/live/cam.m3u8?k=1",
            "https://h:443/live/cam.m3u8",
        ] {
            assert_eq!(StreamUrl::parse(url).expect("valid").to_string(), url);
        }
        let url = StreamUrl::parse("http://h:8080/live/cam.m3u8?key=k").expect("valid");
        assert_eq!(
            url.publisher(1).to_string(),
            "http://h:8080/live/cam-1.m3u8?key=k"
        );
    }

    #[test]
    fn hls_urls_without_a_stream_or_over_websocket_are_refused() {
        for url in [
            "http://h/live/.m3u8",
            "https://h/cam.m3u8",
            "http://h/live/cam.m3u8x",
            "ws://h/live/cam.m3u8",
            "wss://h/live/cam.m3u8",
        ] {
            assert!(
                matches!(StreamUrl::parse(url), Err(UrlError::NoStream { .. })),
                "{url}"
            );
        }
        let error = StreamUrl::parse("http://h/live/cam").expect_err("no suffix");
        assert!(error.to_string().contains(".m3u8"), "{error}");
        assert!(matches!(
            StreamUrl::parse("http://h/live/c m.m3u8"),
            Err(UrlError::Unsafe { .. })
        ));
        assert!(matches!(
            StreamUrl::parse("https://h:0x/live/cam.m3u8"),
            Err(UrlError::BadPort { .. })
        ));
    }

    #[test]
    fn publishers_default_to_rtmp_on_the_same_host() {
        let url = StreamUrl::parse("http://[::1]:8080/live/cam.flv?k=1").expect("valid");
        assert_eq!(url.default_publish_url(), "rtmp://[::1]:1935/live/cam?k=1");
        assert_eq!(url.authority(), "[::1]:8080");
        // Players over TLS; publishers on plain RTMP all the same.
        for url in [
            "rtmps://h:1936/live/cam?k=1",
            "https://h/live/cam.flv?k=1",
            "wss://h:8443/live/cam.flv?k=1",
        ] {
            let url = StreamUrl::parse(url).expect("valid");
            assert_eq!(url.default_publish_url(), "rtmp://h:1935/live/cam?k=1");
        }
    }

    #[test]
    fn a_publishers_stream_is_numbered_before_the_query() {
        let url = StreamUrl::parse("http://h:8080/live/cam.flv?key=k").unwrap();
        assert_eq!(
            url.publisher(0).to_string(),
            "http://h:8080/live/cam-0.flv?key=k"
        );
        let url = StreamUrl::parse("rtmp://h/live/cam?key=k").unwrap();
        assert_eq!(
            url.publisher(2).to_string(),
            "rtmp://h:1935/live/cam-2?key=k"
        );
    }
}
