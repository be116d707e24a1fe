//! The media playlist (RFC 8216bis with Low-Latency HLS).
//!
//! SKELETON: helper P fills this in (see the brief).

use crate::window::Window;

/// The media playlist for `window`. `query` (without its `?`, may be
/// empty) is appended to every URI in it, so a player's access key
/// reaches its segment and part requests.
pub fn render(window: &Window, uri_prefix: &str, query: &str) -> String {
    todo!("helper P: {window:?} {uri_prefix} {query}")
}
