//! Messages between shards (house rule 5: cross-shard work is an explicit,
//! bounded message; shards share only immutable bytes).
//!
//! Each shard has one inbox. Control messages (subscribe, snapshot,
//! publisher changes) are few, bounded by streams × shards, and never
//! dropped. Frames are bounded per inbox: when a shard falls
//! [`limits::SHARD_INBOX_MESSAGES_MAX`] frames behind, further frames for
//! it are dropped and counted, and the sequence numbers tell it so, like a
//! slow player. One channel keeps control and frames in order. Queries
//! from the control thread are bounded per inbox by the permit each holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

use super::messages::{ShardId, ShardMessage, StreamMessage};
use crate::limits;
use crate::media::{Frame, StreamKey};

/// The sending side of every shard's inbox.
#[derive(Clone, Debug)]
pub struct Mesh {
    inboxes: Arc<[Inbox]>,
}

#[derive(Debug)]
struct Inbox {
    sender: mpsc::UnboundedSender<ShardMessage>,
    /// Frames sent and not yet taken out.
    frames_queued: AtomicUsize,
}

/// The receiving side of one shard's inbox.
#[derive(Debug)]
pub struct InboxReceiver {
    receiver: mpsc::UnboundedReceiver<ShardMessage>,
    mesh: Mesh,
    shard: ShardId,
}

/// A frame was not sent: the receiving shard is too far behind.
#[derive(Debug, PartialEq, Eq)]
pub struct InboxFull;

impl Mesh {
    /// A mesh of `shards` inboxes and their receivers, in shard order.
    pub fn new(shards: usize) -> (Mesh, Vec<InboxReceiver>) {
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..shards).map(|_| mpsc::unbounded_channel()).unzip();
        let inboxes: Arc<[Inbox]> = senders
            .into_iter()
            .map(|sender| Inbox {
                sender,
                frames_queued: AtomicUsize::new(0),
            })
            .collect();
        let mesh = Mesh { inboxes };
        let receivers = receivers
            .into_iter()
            .enumerate()
            .map(|(i, receiver)| InboxReceiver {
                receiver,
                mesh: mesh.clone(),
                shard: ShardId(i),
            })
            .collect();
        (mesh, receivers)
    }

    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Sends a control message; it is never dropped. A shard that already
    /// stopped is not an error: it needs nothing any more.
    pub fn send(&self, to: ShardId, message: ShardMessage) {
        debug_assert!(!matches!(
            message,
            ShardMessage::Stream(StreamMessage::Frame { .. })
        ));
        if let Some(inbox) = self.inboxes.get(to.0) {
            let _ = inbox.sender.send(message);
        }
    }

    /// Sends a frame unless the receiver already has its limit queued.
    pub fn send_frame(
        &self,
        to: ShardId,
        key: StreamKey,
        seq: u64,
        frame: Frame,
    ) -> Result<(), InboxFull> {
        let Some(inbox) = self.inboxes.get(to.0) else {
            return Err(InboxFull);
        };
        if inbox.frames_queued.load(Ordering::Relaxed) >= limits::SHARD_INBOX_MESSAGES_MAX {
            return Err(InboxFull);
        }
        inbox.frames_queued.fetch_add(1, Ordering::Relaxed);
        if inbox
            .sender
            .send(ShardMessage::Stream(StreamMessage::Frame {
                key,
                seq,
                frame,
            }))
            .is_err()
        {
            inbox.frames_queued.fetch_sub(1, Ordering::Relaxed);
            return Err(InboxFull);
        }
        Ok(())
    }
}

impl InboxReceiver {
    /// The next message; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<ShardMessage> {
        let message = self.receiver.recv().await?;
        if matches!(message, ShardMessage::Stream(StreamMessage::Frame { .. })) {
            if let Some(inbox) = self.mesh.inboxes.get(self.shard.0) {
                inbox.frames_queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
        Some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Timestamp;
    use crate::session::MediaKind;

    #[test]
    fn frames_past_the_bound_are_refused_and_control_messages_never_are() {
        let (mesh, mut inboxes) = Mesh::new(2);
        let frame = Frame::package(MediaKind::Video, Timestamp(0), &[0x17, 1, 0, 0, 0], 4096)
            .expect("a frame");
        let key = StreamKey::new("live", "cam");
        let send = |seq| mesh.send_frame(ShardId(1), key.clone(), seq, frame.clone());
        for seq in 0..limits::SHARD_INBOX_MESSAGES_MAX as u64 {
            assert_eq!(send(seq), Ok(()));
        }
        assert_eq!(send(u64::MAX), Err(InboxFull), "the inbox is full");
        assert_eq!(
            mesh.send_frame(ShardId(0), key.clone(), 0, frame.clone()),
            Ok(()),
            "another shard's inbox has its own bound"
        );
        mesh.send(ShardId(1), ShardMessage::Shutdown);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let inbox = &mut inboxes[1];
        let first = runtime.block_on(inbox.recv());
        assert!(matches!(
            first,
            Some(ShardMessage::Stream(StreamMessage::Frame { seq: 0, .. }))
        ));
        assert_eq!(send(1 << 40), Ok(()), "a frame taken out frees its place");
        assert_eq!(send(1 << 41), Err(InboxFull));
        let mut frames_before = 0;
        loop {
            match runtime.block_on(inbox.recv()) {
                Some(ShardMessage::Stream(StreamMessage::Frame { .. })) => frames_before += 1,
                Some(ShardMessage::Shutdown) => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            frames_before,
            limits::SHARD_INBOX_MESSAGES_MAX - 1,
            "the control message went in after the full inbox, in order"
        );
    }
}
