//! The player page ringcast serves at its page prefix (`GET /` by
//! default): `index.html` and the builds of mpegts.js (FLV) and hls.js
//! (LL-HLS) it plays with, compiled into the binary so the server needs no
//! files at run time.
//!
//! Owns the name → bytes map and the content types; the server owns the
//! prefix, the method and the response head. The files live in
//! `crates/web/player/` (its README says where the scripts come from and
//! how to update them); the page loads the one script its transport needs,
//! relative to itself, so every asset is served under the same prefix.
//! Browsers refuse a script served with a type that is not JavaScript when
//! `X-Content-Type-Options: nosniff` is set, so each asset names its type
//! here.

/// One file of the player, as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The `Content-Type` to send it with.
    pub content_type: &'static str,
    /// The file's bytes.
    pub body: &'static [u8],
}

/// The mpegts.js release vendored in `player/mpegts.js` (npm
/// `mpegts.js@1.8.2`, Apache-2.0).
pub const MPEGTS_VERSION: &str = "1.8.2";

/// The hls.js release vendored in `player/hls.js` (npm `hls.js@1.7.4`,
/// its `dist/hls.light.min.js`, Apache-2.0).
pub const HLS_JS_VERSION: &str = "1.7.4";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

const INDEX_HTML: &str = include_str!("../player/index.html");
const MPEGTS_JS: &str = include_str!("../player/mpegts.js");
const LICENSE_MPEGTS: &str = include_str!("../player/LICENSE.mpegts.txt");
// The minified build bundles es6-promise (MIT); its first line points here.
const LICENSE_BUNDLED: &str = include_str!("../player/mpegts.js.LICENSE.txt");
const HLS_JS: &str = include_str!("../player/hls.js");
const LICENSE_HLS: &str = include_str!("../player/LICENSE.hls.txt");

/// The asset at `name`, the path below the page prefix ("" and
/// "index.html" are the page); `None` for anything else, including any
/// name with a directory in it.
#[must_use]
pub fn asset(name: &str) -> Option<Asset> {
    let (content_type, body) = match name {
        "" | "index.html" => (HTML, INDEX_HTML),
        "mpegts.js" => (JAVASCRIPT, MPEGTS_JS),
        "LICENSE.mpegts.txt" => (TEXT, LICENSE_MPEGTS),
        "mpegts.js.LICENSE.txt" => (TEXT, LICENSE_BUNDLED),
        "hls.js" => (JAVASCRIPT, HLS_JS),
        "LICENSE.hls.txt" => (TEXT, LICENSE_HLS),
        _ => return None,
    };
    Some(Asset {
        content_type,
        body: body.as_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str) -> &'static str {
        std::str::from_utf8(asset(name).unwrap().body).unwrap()
    }

    #[test]
    fn root_and_index_html_are_the_page() {
        let root = asset("").unwrap();
        assert_eq!(root, asset("index.html").unwrap());
        assert_eq!(root.content_type, "text/html; charset=utf-8");
        assert!(text("").starts_with("<!doctype html>"));
    }

    #[test]
    fn page_loads_the_script_its_transport_needs_next_to_it_and_plays_live() {
        let page = text("");
        // Each on demand (an FLV page does not download hls.js, nor an HLS
        // page mpegts.js), and relative, so a page under any prefix finds
        // the script under it.
        assert!(!page.contains("<script src="));
        assert!(page.contains("load('mpegts.js', playFlv)"));
        assert!(page.contains("load('hls.js', playHls)"));
        assert!(page.contains("isLive: true"));
        assert!(page.contains("liveBufferLatencyChasing: true"));
        assert!(page.contains("lowLatencyMode: true"));
        assert!(page.contains("canPlayType('application/vnd.apple.mpegurl')"));
        assert!(page.contains("window.ringcast"));
        // No other download: every other URL in the page is the stream's.
        assert!(!page.contains("src=\"http"));
        assert!(!page.contains("href=\"http"));
    }

    #[test]
    fn page_offers_every_transport() {
        let page = text("");
        for (value, name) in [
            ("http", "HTTP-FLV"),
            ("ws", "WebSocket-FLV"),
            ("hls", "LL-HLS"),
        ] {
            assert!(
                page.contains(&format!(r#"<option value="{value}">{name}</option>"#)),
                "{value}"
            );
        }
    }

    #[test]
    fn scripts_are_javascript_and_the_pinned_releases() {
        let readme = include_str!("../player/README.md");
        let script = asset("mpegts.js").unwrap();
        assert_eq!(script.content_type, "text/javascript; charset=utf-8");
        assert!(script.body.len() > 100_000, "the minified build");
        assert!(text("mpegts.js").starts_with("/*! For license information"));
        assert!(readme.contains(&format!("mpegts.js@{MPEGTS_VERSION}")));

        let script = asset("hls.js").unwrap();
        assert_eq!(script.content_type, "text/javascript; charset=utf-8");
        assert!(script.body.len() > 100_000, "the minified build");
        // The UMD bundle sets `Hls` on the page's global object.
        assert!(text("hls.js").contains("self).Hls=i()"));
        assert!(text("hls.js").contains(&format!("=\"{HLS_JS_VERSION}\"")));
        assert!(readme.contains(&format!("hls.js@{HLS_JS_VERSION}")));
    }

    #[test]
    fn licenses_are_served_as_text() {
        let license = asset("LICENSE.mpegts.txt").unwrap();
        assert_eq!(license.content_type, "text/plain; charset=utf-8");
        assert!(text("LICENSE.mpegts.txt").contains("Apache License"));
        assert!(text("mpegts.js.LICENSE.txt").contains("es6-promise"));
        assert_eq!(asset("LICENSE.hls.txt").unwrap().content_type, TEXT);
        assert!(text("LICENSE.hls.txt").contains("Apache License"));
        assert!(text("LICENSE.hls.txt").contains("Dailymotion"));
    }

    #[test]
    fn other_names_are_none() {
        for name in [
            "index.htm",
            "/index.html",
            "player/mpegts.js",
            "../player/mpegts.js",
            "mpegts.js.map",
            "hls.light.min.js.map",
            "hls.min.js",
            "HLS.JS",
            "player/hls.js",
            "MPEGTS.JS",
            "README.md",
            "favicon.ico",
            "live/cam.flv",
            "live/cam.m3u8",
        ] {
            assert_eq!(asset(name), None, "{name}");
        }
    }
}
