//! The recorder thread: takes the shards' commands, runs each
//! recording's [`Segmenter`], and carries out its operations with
//! blocking file I/O. Appends are gathered per file and written when the
//! queue is empty or [`limits::RECORD_WRITE_BATCH_BYTES`] are waiting, so
//! a file on disk always ends with a whole write: that is where a failed
//! one is cut back to.
//!
//! Its log lines (a file started, completed, failed) pass a budget of
//! their own, a shard's worth ([`LogBucket::per_shard`]): files come and
//! go with publishes, which peers make.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use bytes::BytesMut;
use time::OffsetDateTime;
use tracing::{info, warn};

use super::segmenter::{Op, Segmenter};
use super::{Command, Note, Publisher, RecordingId, Reports, Start};
use crate::access::hooks::{Hooks, OwnedHook, RecordDone};
use crate::config::RecordSettings;
use crate::limits;
use crate::logging::LogBucket;
use crate::media::{Frame, StreamKey};

/// Takes commands until every sender is gone, then completes what is
/// open.
pub(super) fn run(queue: &mpsc::Receiver<Command>, hooks: Hooks, reports: Box<dyn Reports>) {
    let mut writer = Writer {
        recordings: HashMap::new(),
        context: Context {
            hooks,
            reports,
            log: LogBucket::per_shard(0),
            started: Instant::now(),
        },
    };
    while let Ok(command) = queue.recv() {
        writer.handle(command);
        while let Ok(command) = queue.try_recv() {
            writer.handle(command);
        }
        writer.write_waiting();
    }
    let ids: Vec<RecordingId> = writer.recordings.keys().copied().collect();
    for id in ids {
        writer.handle(Command::Stop { id });
    }
}

struct Writer {
    recordings: HashMap<RecordingId, Recording>,
    context: Context,
}

/// What every recording's I/O reports to.
struct Context {
    hooks: Hooks,
    reports: Box<dyn Reports>,
    log: LogBucket,
    started: Instant,
}

/// One recording on the thread.
struct Recording {
    id: RecordingId,
    key: StreamKey,
    settings: RecordSettings,
    /// The app's `on_record_done`.
    hook: OwnedHook,
    publisher: Option<Publisher>,
    queued: Arc<AtomicUsize>,
    segmenter: Segmenter,
    file: Option<OpenFile>,
    /// Operations made and not carried out yet (kept for its allocation).
    ops: Vec<Op>,
}

/// The file a recording writes now.
struct OpenFile {
    path: PathBuf,
    file: File,
    /// Appended, not yet written.
    waiting: BytesMut,
    /// The media the file holds once `waiting` is written.
    waiting_ms: u64,
    /// Bytes written, and the media they hold.
    written: u64,
    written_ms: u64,
}

/// A recording's file system failed it.
struct Failure {
    path: Option<PathBuf>,
    error: io::Error,
}

impl Writer {
    fn handle(&mut self, command: Command) {
        match command {
            Command::Start(start) => self.start(*start),
            Command::Frame { id, frame } => self.frame(id, &frame),
            Command::Stop { id } => {
                if let Some(mut recording) = self.recordings.remove(&id) {
                    let mut ops = std::mem::take(&mut recording.ops);
                    recording.segmenter.finish(&mut ops);
                    if let Err(failure) = recording.carry_out(&mut ops, &mut self.context) {
                        recording.fail(failure, &mut self.context);
                    }
                }
            }
        }
    }

    fn start(&mut self, start: Start) {
        let Start {
            id,
            key,
            settings,
            hook,
            publisher,
            frames,
            queued,
        } = start;
        let recording = Recording {
            id,
            key,
            segmenter: Segmenter::new(&settings),
            settings,
            hook,
            publisher,
            queued,
            file: None,
            ops: Vec::new(),
        };
        self.recordings.insert(id, recording);
        for frame in frames {
            self.frame(id, &frame);
        }
    }

    fn frame(&mut self, id: RecordingId, frame: &Frame) {
        let Some(recording) = self.recordings.get_mut(&id) else {
            return;
        };
        recording.queued.fetch_sub(frame.held(), Ordering::Relaxed);
        let mut ops = std::mem::take(&mut recording.ops);
        recording.segmenter.push(frame, &mut ops);
        let done = recording.carry_out(&mut ops, &mut self.context);
        recording.ops = ops;
        if let Err(failure) = done {
            self.fail(id, failure);
        }
    }

    /// Writes what every file has waiting.
    fn write_waiting(&mut self) {
        let failed: Vec<(RecordingId, Failure)> = (self.recordings.iter_mut())
            .filter_map(|(id, recording)| Some((*id, recording.write_waiting().err()?)))
            .collect();
        for (id, failure) in failed {
            self.fail(id, failure);
        }
    }

    fn fail(&mut self, id: RecordingId, failure: Failure) {
        if let Some(recording) = self.recordings.remove(&id) {
            recording.fail(failure, &mut self.context);
        }
    }
}

impl Recording {
    /// Carries out `ops` (emptied), in order, until one fails.
    fn carry_out(&mut self, ops: &mut Vec<Op>, context: &mut Context) -> Result<(), Failure> {
        for op in ops.drain(..) {
            match op {
                Op::Open => self.open(context)?,
                Op::Append { bytes, media_ms } => {
                    let Some(file) = self.file.as_mut() else {
                        continue;
                    };
                    file.waiting.extend_from_slice(&bytes);
                    file.waiting_ms = media_ms;
                    if file.waiting.len() >= limits::RECORD_WRITE_BATCH_BYTES {
                        self.write_waiting()?;
                    }
                }
                Op::Patch { offset, bytes } => {
                    self.write_waiting()?;
                    if let Some(file) = &self.file {
                        (file.file.write_all_at(&bytes, offset)).map_err(|e| file.failure(e))?;
                    }
                }
                Op::Close { duration_ms } => {
                    self.write_waiting()?;
                    if let Some(file) = self.file.take() {
                        self.closed(file, duration_ms, context);
                    }
                }
                Op::Discard => {
                    if let Some(file) = self.file.take() {
                        // Nothing of it is worth keeping; a file we cannot
                        // remove stays, as empty as the disk left it.
                        let _ = fs::remove_file(&file.path);
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates the next file, its directories first, under the first free
    /// name.
    fn open(&mut self, context: &mut Context) -> Result<(), Failure> {
        let key = &self.key;
        let start = OffsetDateTime::now_utc();
        let path =
            (self.settings.path.render(key.app(), key.name(), start)).map_err(|e| Failure {
                path: None,
                error: io::Error::other(e),
            })?;
        let (path, file) = create(&path).map_err(|error| Failure {
            path: Some(path.clone()),
            error,
        })?;
        if context.admit_line() {
            info!(stream = %key, path = %path.display(), format = self.settings.format.name(), "recording to a new file");
        }
        self.file = Some(OpenFile {
            path,
            file,
            waiting: BytesMut::new(),
            waiting_ms: 0,
            written: 0,
            written_ms: 0,
        });
        Ok(())
    }

    fn write_waiting(&mut self) -> Result<(), Failure> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if file.waiting.is_empty() {
            return Ok(());
        }
        let OpenFile {
            file: handle,
            waiting,
            ..
        } = file;
        match handle.write_all(waiting) {
            Ok(()) => {
                file.written += file.waiting.len() as u64;
                file.written_ms = file.waiting_ms;
                file.waiting.clear();
                Ok(())
            }
            Err(error) => Err(file.failure(error)),
        }
    }

    /// A file is complete: logged, counted by the shard, told to the hook.
    fn closed(&self, file: OpenFile, duration_ms: u64, context: &mut Context) {
        let path = file.path.display().to_string();
        let bytes = file.written;
        drop(file);
        if context.admit_line() {
            info!(stream = %self.key, %path, duration_ms, bytes, "recording file complete");
        }
        context.reports.report(self.id.shard, Note::File { bytes });
        let hook = self.hook.hook();
        if hook.urls.is_empty() {
            return;
        }
        let done = RecordDone {
            app: self.key.app(),
            stream: self.key.name(),
            path: &path,
            format: self.settings.format.name(),
            duration_ms,
            bytes,
            client_id: self.publisher.as_ref().map(|p| p.client_id.as_str()),
            ip: self.publisher.as_ref().map(|p| p.ip.as_str()),
        };
        for (url, why) in context.hooks.tell_record_done(hook, &done) {
            if context.admit_line() {
                warn!(stream = %self.key, hook = %url.redacted(), action = "on_record_done", %why, "hook not called");
            }
        }
    }

    /// Writing failed: the file is cut back to its last whole write and
    /// completed as far as that (or removed), the shard is told.
    fn fail(mut self, failure: Failure, context: &mut Context) {
        let path = failure.path.as_deref().map(Path::display);
        if context.admit_line() {
            match path {
                Some(path) => {
                    warn!(stream = %self.key, path = %path, error = %failure.error, "recording stopped: the file could not be written (the stream goes on)");
                }
                None => {
                    warn!(stream = %self.key, error = %failure.error, "recording stopped: no file could be named (the stream goes on)");
                }
            }
        }
        let shard = self.id.shard;
        let note = Note::Failed {
            key: self.key.clone(),
            id: self.id,
        };
        if let Some(file) = self.file.as_mut() {
            file.waiting.clear();
            let (len, media_ms) = (file.written, file.written_ms);
            // What a failed write left past the last whole one goes.
            let _ = file.file.set_len(len);
            let mut ops = Vec::new();
            self.segmenter.abandon(len, media_ms, &mut ops);
            if ops.is_empty() {
                // It failed in the file's last writes, after the segmenter
                // had completed it: it keeps the head it was written with.
                ops.push(Op::Close {
                    duration_ms: media_ms,
                });
            }
            // The head is rewritten within what the file holds: no more
            // space is needed. If even that fails, the file keeps the
            // head it had (duration 0, no index), which still plays.
            if let Err(again) = self.carry_out(&mut ops, context) {
                if context.admit_line() {
                    warn!(stream = %self.key, error = %again.error, "recording file left without its index");
                }
            }
        }
        context.reports.report(shard, note);
    }
}

impl OpenFile {
    fn failure(&self, error: io::Error) -> Failure {
        Failure {
            path: Some(self.path.clone()),
            error,
        }
    }
}

impl Context {
    /// Whether a line may be written now; writes the count of those that
    /// could not first.
    fn admit_line(&mut self) -> bool {
        let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if !self.log.take(now_ms) {
            return false;
        }
        let suppressed = self.log.take_suppressed();
        if suppressed > 0 {
            info!(
                suppressed,
                "… and {suppressed} more recording lines suppressed (log rate limit)"
            );
        }
        true
    }
}

/// Creates `path` (its directories first) or, if it exists, the first
/// free of `NAME-1.EXT`, `NAME-2.EXT`, ...: never an existing file.
fn create(path: &Path) -> io::Result<(PathBuf, File)> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    for n in 0..limits::RECORD_NAME_TRIES_MAX {
        let candidate = if n == 0 {
            path.to_owned()
        } else {
            numbered(path, n)
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(file) => return Ok((candidate, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "it and {} numbered names beside it exist",
            limits::RECORD_NAME_TRIES_MAX - 1
        ),
    ))
}

/// `dir/NAME-n.EXT` for `dir/NAME.EXT`.
fn numbered(path: &Path, n: u32) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_gets_a_number_before_its_extension() {
        let dir = std::env::temp_dir().join(format!("ringcast-record-{}", std::process::id()));
        let path = dir.join("live/cam-20260301T000000.flv");
        let (first, _) = create(&path).unwrap();
        let (second, _) = create(&path).unwrap();
        let (third, _) = create(&path).unwrap();
        assert_eq!(first, path);
        assert_eq!(second, dir.join("live/cam-20260301T000000-1.flv"));
        assert_eq!(third, dir.join("live/cam-20260301T000000-2.flv"));
        assert_eq!(numbered(Path::new("/r/x"), 3), PathBuf::from("/r/x-3"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
