//! One connection's outbound queue and the slow-consumer policy (house rule
//! 4: slow subscribers pay, not the publisher).
//!
//! Frames are queued as shared [`Bytes`]; nothing is copied. When the
//! queue holds more than its bound, video is dropped until the next
//! keyframe (audio, metadata, sequence headers and the session's own
//! messages still go out, so the player stays in sync), and a player that
//! stays over the bound too long, or whose queue reaches twice the bound,
//! is to be disconnected. Time comes in as milliseconds from the caller.

use std::collections::VecDeque;
use std::mem::size_of;

use bytes::{Buf, Bytes};

use super::frame::FrameClass;

/// Memory one queued buffer costs the queue beyond its bytes: its slot.
/// The bytes themselves are shared with every other player, but the slot
/// is this player's: 1-byte messages would otherwise cost 32 bytes each
/// per player, uncounted.
pub const QUEUE_ENTRY_BYTES: usize = size_of::<Bytes>();

/// Slots an empty queue (and a writer's batch) keeps: what a player at
/// live rates uses between writes (a video frame, the audio beside it,
/// the session's messages). A joining player's GOP or a stall takes
/// hundreds, which would otherwise stay this player's for ever.
pub const QUEUE_SLOTS_KEPT: usize = 16;

/// What happened to something offered to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Offer {
    /// Queued; wake the writer if it was idle.
    Queued,
    /// Dropped by the slow-consumer policy (counted).
    Dropped,
    /// The player cannot keep up: disconnect it.
    Hopeless,
}

/// Counts kept by a queue, for the shard's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub frames_dropped: u64,
    pub bytes_dropped: u64,
}

#[derive(Debug)]
pub struct OutboundQueue {
    bound: usize,
    slow_after_ms: u64,
    queue: VecDeque<Bytes>,
    /// Bytes in `queue` plus bytes handed to the writer and not yet written.
    pending: usize,
    /// Buffers in `queue` plus buffers handed to the writer and not yet
    /// written whole: each costs [`QUEUE_ENTRY_BYTES`].
    entries: usize,
    /// Video is dropped until a keyframe finds room: set while a player is
    /// behind, and for a new player that did not start on a GOP.
    video_gated: bool,
    /// When the queue went over its bound, while it is.
    behind_since_ms: Option<u64>,
    stats: QueueStats,
}

impl OutboundQueue {
    /// A queue that starts dropping video past `bound` bytes and gives up
    /// on a player behind for `slow_after_ms`.
    pub fn new(bound: usize, slow_after_ms: u64) -> OutboundQueue {
        OutboundQueue {
            bound,
            slow_after_ms,
            queue: VecDeque::new(),
            pending: 0,
            entries: 0,
            video_gated: false,
            behind_since_ms: None,
            stats: QueueStats::default(),
        }
    }

    /// Makes video wait for the next keyframe (a player that joins with no
    /// GOP to start from).
    pub fn gate_video(&mut self) {
        self.video_gated = true;
    }

    /// Offers a frame of a live stream.
    pub fn offer(&mut self, class: FrameClass, wire: Bytes, now_ms: u64) -> Offer {
        let len = wire.len() + QUEUE_ENTRY_BYTES;
        let held = self.held();
        if held + len > 2 * self.bound {
            return Offer::Hopeless;
        }
        let over = held + len > self.bound;
        if over {
            let since = *self.behind_since_ms.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= self.slow_after_ms {
                return Offer::Hopeless;
            }
        }
        match class {
            FrameClass::Interframe if self.video_gated || over => self.drop(wire.len()),
            // A keyframe reopens the gate once the backlog is down to half
            // the bound, so a player that recovered gets a clean start.
            FrameClass::Keyframe if (self.video_gated || over) && held + len > self.bound / 2 => {
                self.video_gated = true;
                self.drop(wire.len())
            }
            FrameClass::Keyframe => {
                self.video_gated = false;
                self.push(wire)
            }
            _ => self.push(wire),
        }
    }

    /// Queues bytes that must not be dropped: the session's own messages
    /// and a joining player's start (headers and GOP).
    pub fn push(&mut self, wire: Bytes) -> Offer {
        if !wire.is_empty() {
            self.pending += wire.len();
            self.entries += 1;
            self.queue.push_back(wire);
        }
        if self.held() <= self.bound {
            self.behind_since_ms = None;
        }
        Offer::Queued
    }

    /// Moves up to `bytes_max` bytes in at most `buffers_max` buffers into
    /// `batch` for one write. They still count as pending until
    /// [`OutboundQueue::written`].
    pub fn take_batch(&mut self, bytes_max: usize, buffers_max: usize, batch: &mut Vec<Bytes>) {
        let mut taken = 0;
        while batch.len() < buffers_max {
            let Some(front) = self.queue.front() else {
                break;
            };
            if taken > 0 && taken + front.len() > bytes_max {
                break;
            }
            taken += front.len();
            if let Some(buffer) = self.queue.pop_front() {
                batch.push(buffer);
            }
        }
    }

    /// Accounts for a write of `written` bytes of `batch` (as taken) and
    /// puts what was not written back at the front, in order.
    pub fn written(&mut self, written: usize, batch: &mut Vec<Bytes>) {
        self.pending = self.pending.saturating_sub(written);
        let mut left = written;
        let mut done = 0;
        for buffer in batch.iter() {
            if left < buffer.len() {
                break;
            }
            left -= buffer.len();
            done += 1;
        }
        self.entries = self.entries.saturating_sub(done);
        // Last first, so that pushing to the front keeps the order.
        for (i, mut buffer) in batch.drain(..).enumerate().rev() {
            if i < done {
                continue;
            }
            if i == done {
                buffer.advance(left);
            }
            self.queue.push_front(buffer);
        }
        if self.held() <= self.bound {
            self.behind_since_ms = None;
        }
        if self.queue.is_empty() && self.queue.capacity() > QUEUE_SLOTS_KEPT {
            self.queue.shrink_to(QUEUE_SLOTS_KEPT);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Past twice the bound, as [`OutboundQueue::offer`] judges frames: for
    /// what [`OutboundQueue::push`] queued regardless (the session's
    /// answers to a peer that asks and never reads them).
    pub fn is_hopeless(&self) -> bool {
        self.held() > 2 * self.bound
    }

    /// Memory held for this player: bytes queued or being written, and
    /// [`QUEUE_ENTRY_BYTES`] for each buffer they are in. This is what the
    /// bound applies to.
    pub fn held(&self) -> usize {
        self.pending + self.entries * QUEUE_ENTRY_BYTES
    }

    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    fn drop(&mut self, len: usize) -> Offer {
        self.stats.frames_dropped += 1;
        self.stats.bytes_dropped += len as u64;
        Offer::Dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(len: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; len])
    }

    /// A buffer that holds `held` bytes of the queue's bound, its slot
    /// included.
    fn frame(held: usize) -> Bytes {
        bytes(held - QUEUE_ENTRY_BYTES, 0)
    }

    #[test]
    fn batches_respect_bytes_and_buffer_caps_and_partial_writes_keep_order() {
        let mut q = OutboundQueue::new(1 << 20, 10_000);
        for i in 0..5 {
            let _ = q.push(bytes(100, i));
        }
        let mut batch = Vec::new();
        q.take_batch(250, 16, &mut batch);
        assert_eq!(batch.len(), 2, "byte cap");
        q.written(0, &mut batch);
        q.take_batch(1000, 3, &mut batch);
        assert_eq!(batch.len(), 3, "buffer cap");
        assert_eq!(batch.len(), 3);
        q.written(150, &mut batch);
        assert!(batch.is_empty());
        assert_eq!(q.held(), 350 + 4 * QUEUE_ENTRY_BYTES, "four buffers left");
        let mut next = Vec::new();
        q.take_batch(1000, 16, &mut next);
        let lens: Vec<_> = next.iter().map(|b| (b.len(), b[0])).collect();
        assert_eq!(lens, vec![(50, 1), (100, 2), (100, 3), (100, 4)]);
    }

    #[test]
    fn an_emptied_queue_gives_back_the_slots_a_burst_took() {
        let mut q = OutboundQueue::new(1 << 20, 10_000);
        for _ in 0..300 {
            let _ = q.push(bytes(10, 0));
        }
        let mut batch = Vec::new();
        q.take_batch(1 << 20, 1024, &mut batch);
        q.written(3000, &mut batch);
        assert!(q.is_empty());
        assert!(q.queue.capacity() < 300 / 2, "{}", q.queue.capacity());
    }

    #[test]
    fn a_single_oversized_buffer_still_goes_out() {
        let mut q = OutboundQueue::new(1 << 20, 10_000);
        let _ = q.push(bytes(5000, 0));
        let mut batch = Vec::new();
        q.take_batch(1000, 16, &mut batch);
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn a_player_over_its_bound_loses_video_until_a_keyframe_fits() {
        let mut q = OutboundQueue::new(1000, 10_000);
        assert_eq!(q.offer(FrameClass::Keyframe, frame(600), 0), Offer::Queued);
        assert_eq!(
            q.offer(FrameClass::Interframe, frame(300), 1),
            Offer::Queued
        );
        // Over the bound: this interframe and the rest of the GOP go.
        assert_eq!(
            q.offer(FrameClass::Interframe, frame(300), 2),
            Offer::Dropped
        );
        // Audio still flows.
        assert_eq!(q.offer(FrameClass::Other, frame(50), 3), Offer::Queued);
        // Still behind: a keyframe does not fit under half the bound.
        assert_eq!(q.offer(FrameClass::Keyframe, frame(100), 4), Offer::Dropped);
        // The writer catches up...
        let mut batch = Vec::new();
        q.take_batch(10_000, 16, &mut batch);
        q.written(600 + 300 + 50 - 3 * QUEUE_ENTRY_BYTES, &mut batch);
        // ...but interframes wait for a keyframe.
        assert_eq!(
            q.offer(FrameClass::Interframe, frame(40), 5),
            Offer::Dropped
        );
        assert_eq!(q.offer(FrameClass::Keyframe, frame(100), 6), Offer::Queued);
        assert_eq!(q.offer(FrameClass::Interframe, frame(40), 7), Offer::Queued);
        assert_eq!(q.stats().frames_dropped, 3);
    }

    #[test]
    fn a_player_behind_too_long_or_too_far_is_hopeless() {
        let mut q = OutboundQueue::new(1000, 5000);
        let _ = q.offer(FrameClass::Keyframe, frame(900), 0);
        assert_eq!(q.offer(FrameClass::Other, frame(200), 100), Offer::Queued);
        assert_eq!(q.offer(FrameClass::Other, frame(40), 4000), Offer::Queued);
        assert_eq!(q.offer(FrameClass::Other, frame(40), 5100), Offer::Hopeless);

        let mut q = OutboundQueue::new(1000, 5000);
        let _ = q.push(frame(1900));
        assert_eq!(q.offer(FrameClass::Other, frame(200), 0), Offer::Hopeless);
    }

    #[test]
    fn what_must_not_be_dropped_is_queued_but_past_twice_the_bound_is_hopeless() {
        let mut q = OutboundQueue::new(1000, 5000);
        let _ = q.push(frame(2000));
        assert!(!q.is_hopeless(), "at twice the bound");
        let _ = q.push(bytes(1, 0));
        assert!(q.is_hopeless());
        assert_eq!(q.held(), 2001 + QUEUE_ENTRY_BYTES, "still queued");
    }

    #[test]
    fn tiny_buffers_count_their_slots_against_the_bound() {
        let mut q = OutboundQueue::new(100 * QUEUE_ENTRY_BYTES, 10_000);
        let queued = (0..1000)
            .take_while(|_| q.offer(FrameClass::Other, bytes(1, 0), 0) == Offer::Queued)
            .count();
        // A thousand 1-byte messages would fit if only bytes counted.
        assert!(queued < 200, "{queued} queued");
    }

    #[test]
    fn a_gated_player_starts_video_on_a_keyframe() {
        let mut q = OutboundQueue::new(1000, 5000);
        q.gate_video();
        assert_eq!(
            q.offer(FrameClass::Interframe, frame(40), 0),
            Offer::Dropped
        );
        assert_eq!(q.offer(FrameClass::Other, frame(40), 0), Offer::Queued);
        assert_eq!(q.offer(FrameClass::Keyframe, frame(40), 0), Offer::Queued);
        assert_eq!(q.offer(FrameClass::Interframe, frame(40), 0), Offer::Queued);
    }
}
