//! Delivery directives of a playlist request (RFC 8216bis 6.2.5):
//! `_HLS_msn` and `_HLS_part` ask for a blocking reload.
//!
//! SKELETON: helper P fills this in (see the brief).

use crate::window::Window;

/// A playlist request's directives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `_HLS_msn`: answer once this segment (or its part) exists.
    pub msn: Option<u64>,
    /// `_HLS_part`: with `msn`, the part of that segment.
    pub part: Option<u32>,
}

/// Why a request's directives are refused (answered `400`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Malformed(String),
}

/// Where a request stands against a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Answer now.
    Ready,
    /// Hold the request until a window has it.
    Wait,
    /// Too far ahead (more than two segments, or the advance part limit):
    /// answer `400` now.
    OutOfRange,
}

impl Directives {
    /// Reads `_HLS_msn`, `_HLS_part` (and ignores `_HLS_skip` and other
    /// parameters) from a decoded query string.
    pub fn parse(query: &str) -> Result<Directives, Error> {
        todo!("helper P: {query}")
    }

    /// The query with the directives taken out (what is passed on to the
    /// playlist's URIs).
    pub fn strip(query: &str) -> String {
        todo!("helper P: {query}")
    }

    /// Where the request stands against `window`.
    pub fn check(&self, window: &Window) -> Check {
        todo!("helper P: {self:?} {window:?}")
    }
}
