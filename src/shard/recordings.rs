//! A shard's recordings: the router's `StartRecord`, `Tap` and
//! `StopRecord` for streams whose source is here, carried out by handing
//! frames to the recorder thread ([`crate::record`]), never waiting for
//! it; what the thread reports ([`ShardMessage::Recorded`]) counted.
//!
//! Each recording may have [`limits::RECORD_QUEUE_BYTES_MAX`] bytes of
//! frames handed over and not yet taken. A frame past that stops the
//! recording (the thread completes its file with what it took), which is
//! counted (`record_dropped`) and logged within the shard's budget; the
//! stream and its players go on. A recording that ended so, or by a
//! failed write, is told to the router once this event is over, unless a
//! new recording of the stream started meanwhile.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::warn;

use super::Shard;
use super::mesh::Mesh;
use super::messages::ShardMessage;
use crate::access::hooks::Hook;
use crate::limits;
use crate::media::{Frame, StreamKey};
use crate::record::{self, Command, Note, Publisher, Recorder, RecordingId, Reports, Start};
use crate::router::{Event, ShardId, SourceView, StreamView};

/// The recordings of streams whose source is here.
#[derive(Debug)]
pub(super) struct Recordings {
    recorder: Recorder,
    active: RefCell<HashMap<StreamKey, Active>>,
    next_serial: Cell<u64>,
}

#[derive(Debug)]
struct Active {
    id: RecordingId,
    /// Bytes of frames handed over and not taken yet.
    queued: Arc<AtomicUsize>,
    /// Stopped here (its queue was full): frames are no longer handed
    /// over, the router is told once this event is over.
    dropped: bool,
}

impl Recordings {
    pub(super) fn new(recorder: Recorder) -> Recordings {
        Recordings {
            recorder,
            active: RefCell::default(),
            next_serial: Cell::new(1),
        }
    }
}

/// The recorder thread reports to the shards through their inboxes.
impl Reports for Mesh {
    fn report(&self, shard: ShardId, note: Note) {
        self.send(shard, ShardMessage::Recorded(note));
    }
}

impl Shard {
    /// The router's `StartRecord`: `key` is recorded from `frames` on, by
    /// its app's settings.
    pub(super) fn start_record(&self, key: StreamKey, frames: Vec<Frame>) {
        let config = self.config();
        let serial = self.recordings.next_serial.get();
        self.recordings.next_serial.set(serial + 1);
        let id = RecordingId {
            shard: self.id,
            serial,
        };
        let queued = Arc::new(AtomicUsize::new(frames.iter().map(Frame::held).sum()));
        let start = Start {
            id,
            key: key.clone(),
            settings: config.record.for_app(key.app()).clone(),
            hook: Hook::record_done(&config, key.app()).to_owned(),
            publisher: self.publisher_of(&key),
            frames,
            queued: queued.clone(),
        };
        let active = Active {
            id,
            queued,
            dropped: false,
        };
        let replaced = self
            .recordings
            .active
            .borrow_mut()
            .insert(key.clone(), active);
        // The router starts a stream's recording once until it stops it.
        debug_assert!(replaced.is_none(), "{key} recorded twice");
        match replaced {
            Some(old) if !old.dropped => {
                self.recordings.recorder.send(Command::Stop { id: old.id });
            }
            Some(_) => {}
            None => self.stats.recordings.add(1),
        }
        if !self
            .recordings
            .recorder
            .send(Command::Start(Box::new(start)))
        {
            self.give_up(&key, "the recorder thread stopped");
        }
    }

    /// The router's `Tap`: hands the frame to the recording of `key`, if
    /// any, within its bound.
    pub(super) fn tap_record(&self, key: &StreamKey, frame: &Frame) {
        let mut active = self.recordings.active.borrow_mut();
        let Some(recording) = active.get_mut(key).filter(|r| !r.dropped) else {
            return;
        };
        let queued = recording.queued.load(Ordering::Relaxed);
        if !record::has_room(queued, frame) {
            drop(active);
            self.give_up(key, "the disk does not keep up");
            return;
        }
        recording.queued.fetch_add(frame.held(), Ordering::Relaxed);
        let command = Command::Frame {
            id: recording.id,
            frame: frame.clone(),
        };
        drop(active);
        if !self.recordings.recorder.send(command) {
            self.give_up(key, "the recorder thread stopped");
        }
    }

    /// The router's `StopRecord`: the recording's file is completed.
    pub(super) fn stop_record(&self, key: &StreamKey) {
        let Some(recording) = self.recordings.active.borrow_mut().remove(key) else {
            return;
        };
        self.stats.recordings.sub(1);
        if !recording.dropped {
            self.recordings
                .recorder
                .send(Command::Stop { id: recording.id });
        }
    }

    /// What the recorder thread reports.
    pub(super) fn recorded(&self, note: Note) {
        match note {
            Note::File { bytes } => {
                self.stats.record_files.add(1);
                self.stats.record_bytes.add(bytes);
            }
            Note::Failed { key, id } => {
                self.stats.record_errors.add(1);
                self.record_ended(&key, id);
            }
        }
    }

    /// The admin API asks for `key` to be recorded (`start`) or not: the
    /// answer is whether it is now, or `None` if its source is not here.
    pub(super) fn record_asked(&self, key: &StreamKey, start: bool) -> Option<bool> {
        let is_source = |view: &StreamView<'_>| {
            matches!(
                view.source,
                SourceView::Publisher { .. } | SourceView::Pull { .. }
            )
        };
        if !self
            .router
            .borrow()
            .stream(key)
            .is_some_and(|s| is_source(&s))
        {
            return None;
        }
        let key = key.clone();
        self.route(match start {
            true => Event::RecordStart { key: key.clone() },
            false => Event::RecordStop { key: key.clone() },
        });
        let router = self.router.borrow();
        router.stream(&key).map(|stream| stream.recording)
    }

    /// Stops the recording of `key` here: its frames are no longer handed
    /// over and its file is completed; counted, logged, and told to the
    /// router once this event is over.
    fn give_up(&self, key: &StreamKey, why: &str) {
        let (id, queued) = {
            let mut active = self.recordings.active.borrow_mut();
            let Some(recording) = active.get_mut(key).filter(|r| !r.dropped) else {
                return;
            };
            recording.dropped = true;
            (recording.id, recording.queued.load(Ordering::Relaxed))
        };
        self.recordings.recorder.send(Command::Stop { id });
        self.stats.record_dropped.add(1);
        if self.admit_shard_line() {
            let bound = limits::RECORD_QUEUE_BYTES_MAX;
            warn!(shard = %self.id, stream = %key, queued_bytes = queued, bound, why, "recording dropped; the stream goes on");
        }
        // The router is in the middle of this event's actions: it hears of
        // it next.
        if let Some(shard) = self.handle() {
            let key = key.clone();
            tokio_uring::spawn(async move { shard.record_ended(&key, id) });
        }
    }

    /// Recording `id` of `key` ended without the router asking: the router
    /// is told, unless another recording of the stream started since.
    fn record_ended(&self, key: &StreamKey, id: RecordingId) {
        let mut active = self.recordings.active.borrow_mut();
        if active.get(key).is_none_or(|r| r.id != id) {
            return;
        }
        active.remove(key);
        drop(active);
        self.stats.recordings.sub(1);
        self.route(Event::RecordEnded { key: key.clone() });
    }

    /// The client publishing `key` here, as hooks name it.
    fn publisher_of(&self, key: &StreamKey) -> Option<Publisher> {
        let conn = self.router.borrow().publisher(key)?;
        let connections = self.connections.borrow();
        let conn = connections
            .get(conn.key)
            .filter(|c| c.serial == conn.serial)?;
        Some(Publisher {
            client_id: format!("{}-{}", self.id, conn.serial),
            ip: conn.peer.ip().to_canonical().to_string(),
        })
    }
}
