//! Recording streams to files: the recorder thread, and what shards hand
//! it.
//!
//! A stream is recorded where its source is, on the shard that sees each
//! of its frames once: the router decides when a recording starts and
//! stops (`StartRecord`, `StopRecord`: the source's start and end, the
//! admin API) and taps the stream's frames as it does for pushes and HLS;
//! the shard hands them to the recorder thread ([`Recorder`]) and never
//! waits for it. The thread makes the files ([`segmenter`]: where each
//! starts and ends; [`flv`] and [`mp4`]: their bytes) and writes them
//! with blocking file I/O, which is why it is a thread of its own.
//!
//! A slow or full disk costs the recording, never the stream: a
//! recording may have [`limits::RECORD_QUEUE_BYTES_MAX`] bytes of frames
//! handed over and not taken yet; past that its shard stops it (the file
//! is completed with what it holds), logs and counts it. A write that
//! fails (`ENOSPC`, `EFBIG`) stops that recording only: its file is cut
//! back to its last whole write and completed, or removed if that holds
//! no media; the thread logs it and the shard counts it. Each completed
//! file is logged and told to the app's `on_record_done` hook with its
//! path, duration and size.
//!
//! Must not name the shard (it reports through [`Reports`]), nor block
//! one: everything a shard calls here is a channel send.

pub mod flv;
pub mod mp4;
pub mod segmenter;
mod writer;

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::access::hooks::{Hooks, OwnedHook};
use crate::config::RecordSettings;
use crate::limits;
use crate::media::{Frame, StreamKey};
use crate::router::ShardId;

/// The handle shards hand recordings to the recorder thread through.
#[derive(Clone, Debug)]
pub struct Recorder {
    commands: mpsc::Sender<Command>,
}

/// A recording: its shard and a number that shard never reuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordingId {
    pub shard: ShardId,
    pub serial: u64,
}

/// What a shard tells the recorder thread.
#[derive(Debug)]
pub enum Command {
    Start(Box<Start>),
    /// A frame of the recording's stream, in order.
    Frame {
        id: RecordingId,
        frame: Frame,
    },
    /// The recording ends: its file is completed.
    Stop {
        id: RecordingId,
    },
}

/// A recording that starts.
#[derive(Debug)]
pub struct Start {
    pub id: RecordingId,
    pub key: StreamKey,
    pub settings: RecordSettings,
    /// The app's `on_record_done`, told of each completed file.
    pub hook: OwnedHook,
    /// The stream's publisher, for the hook; `None` for a pull.
    pub publisher: Option<Publisher>,
    /// The stream so far (its headers and GOP), before the frames that
    /// follow.
    pub frames: Vec<Frame>,
    /// Bytes of frames ([`Frame::held`]) handed over and not taken yet:
    /// the shard adds, the thread takes away.
    pub queued: Arc<AtomicUsize>,
}

/// The client a recorded stream comes from, as hooks name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publisher {
    /// `shard-serial`, as the admin API names it.
    pub client_id: String,
    pub ip: String,
}

/// What the recorder thread tells a recording's shard.
#[derive(Debug, PartialEq, Eq)]
pub enum Note {
    /// A file was completed, `bytes` long.
    File { bytes: u64 },
    /// Writing failed: the recording is over (its file completed as far
    /// as it got, or removed).
    Failed { key: StreamKey, id: RecordingId },
}

/// Where the recorder thread sends its [`Note`]s: the shards' inboxes.
pub trait Reports: Send + 'static {
    fn report(&self, shard: ShardId, note: Note);
}

impl Recorder {
    /// Starts the recorder thread; it ends once every handle is dropped,
    /// after completing the files still open.
    pub fn start(hooks: Hooks, reports: impl Reports) -> io::Result<(Recorder, JoinHandle<()>)> {
        let (commands, queue) = mpsc::channel();
        // A file-size limit (RLIMIT_FSIZE) must fail a write with EFBIG,
        // as a full disk fails it with ENOSPC, not kill the server.
        // SAFETY: SIG_IGN installs no handler (none of our code runs in a
        // signal's context), and nothing in the process relies on SIGXFSZ.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || writer::run(&queue, hooks, Box::new(reports)))?;
        Ok((Recorder { commands }, thread))
    }

    /// Hands `command` to the thread; false if it is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }
}

/// Whether a recording with `queued` bytes handed over may take `frame`
/// too, within [`limits::RECORD_QUEUE_BYTES_MAX`].
pub fn has_room(queued: usize, frame: &Frame) -> bool {
    queued.saturating_add(frame.held()) <= limits::RECORD_QUEUE_BYTES_MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Timestamp;
    use crate::session::MediaKind;

    #[test]
    fn a_recording_takes_frames_up_to_its_bound_counted_as_they_are_kept() {
        let frame = Frame::package(MediaKind::Video, Timestamp(0), &[0x27, 1, 0, 0, 0], 4096)
            .expect("a frame");
        let bound = limits::RECORD_QUEUE_BYTES_MAX;
        assert!(has_room(0, &frame));
        assert!(has_room(bound - frame.held(), &frame));
        assert!(
            !has_room(bound - frame.held() + 1, &frame),
            "its overhead counts, not only its bytes"
        );
        assert!(!has_room(usize::MAX, &frame));
    }
}
