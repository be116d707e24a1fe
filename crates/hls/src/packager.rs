//! One stream's HLS state machine: its messages in, parts and segments
//! out, as [`Window`] snapshots.
//!
//! SKELETON: helper P fills this in (see the brief).

use std::sync::Arc;

use bytes::Bytes;
use ringcast_rtmp::session::MediaKind;

use crate::window::Window;

/// How a stream is cut. Checked by the configuration before it gets here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A segment ends at the first keyframe at least this long after it
    /// began (so a longer GOP makes longer segments).
    pub segment_ms: u32,
    /// `EXT-X-PART-INF:PART-TARGET`: no part is longer.
    pub part_ms: u32,
    /// Segments the playlist lists.
    pub segments: usize,
    /// Most bytes the window holds (init segments and parts); past it the
    /// oldest retained segments go first, then listed ones, down to the
    /// open segment and the one before it.
    pub bytes_max: usize,
}

/// One stream's packager.
#[derive(Debug)]
pub struct Packager {
    settings: Settings,
}

impl Packager {
    pub fn new(settings: Settings, uri_prefix: &str) -> Packager {
        let _ = uri_prefix;
        Packager { settings }
    }

    /// One message of the stream: `kind`, its (corrected, continuous)
    /// timestamp and body, and the wall clock as Unix ms. True when a
    /// part (or segment) completed, so [`Packager::window`] changed.
    pub fn push(
        &mut self,
        kind: MediaKind,
        timestamp_ms: u32,
        body: &Bytes,
        now_unix_ms: u64,
    ) -> bool {
        todo!(
            "helper P: {kind:?} {timestamp_ms} {body:?} {now_unix_ms} {:?}",
            self.settings
        )
    }

    /// The source ended (publisher gone, pull lost): the open part and
    /// segment are closed with what they hold. True when that changed the
    /// window. The next message starts a segment with a discontinuity.
    pub fn end(&mut self) -> bool {
        todo!("helper P")
    }

    /// The current snapshot (cheap: an `Arc` clone).
    pub fn window(&self) -> Arc<Window> {
        todo!("helper P")
    }
}
