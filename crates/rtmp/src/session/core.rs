//! What both sides of a session do alike: chunk codec, byte counting and
//! acknowledgements, protocol control and ping answers, and sending typed
//! messages.
//!
//! [`Core::next_message`] hands up whole messages with their bodies not
//! yet decoded: whether a body is worth decoding (a command always, data
//! only on a stream that publishes, a shared object never) is the
//! caller's decision, so a peer cannot make us decode what we would drop.

use bytes::{Bytes, BytesMut};

use super::{Limits, SessionError, chunk_streams};
use crate::limits;
use crate::protocol::chunk::{self, EncodeError, MessageHeader, RawMessage};
use crate::protocol::command::{Command, Status};
use crate::protocol::message::{Message, MessageError, UserControl};
use crate::protocol::{ChunkStreamId, MessageStreamId, Timestamp, amf};

#[derive(Debug)]
pub(super) struct Core {
    decoder: chunk::Decoder,
    encoder: chunk::Encoder,
    pub(super) amf_limits: amf::Limits,
    outbound: BytesMut,
    scratch: BytesMut,
    /// Chunk bytes received since the handshake, and when we last said so.
    received: u64,
    acknowledged: u64,
    /// The peer's Window Acknowledgement Size: acknowledge every this many
    /// bytes (RTMP 1.0 §5.4.4). None until the peer announces one.
    peer_window: Option<u32>,
}

impl Core {
    /// `media_prefix`: keep only this many leading bytes of audio and video
    /// bodies (see [`chunk::Decoder::skimming`]).
    pub(super) fn new(limits: &Limits, media_prefix: Option<usize>) -> Core {
        let decoder = match media_prefix {
            Some(prefix) => chunk::Decoder::skimming(limits.chunk, prefix),
            None => chunk::Decoder::new(limits.chunk),
        };
        Core {
            decoder,
            encoder: chunk::Encoder::new(),
            amf_limits: limits.amf,
            outbound: BytesMut::new(),
            scratch: BytesMut::new(),
            received: 0,
            acknowledged: 0,
            peer_window: None,
        }
    }

    /// The next message from `input`, its body not decoded, after protocol
    /// control has been applied (chunk size, abort, window, pings); user
    /// control events other than pings are passed up. `None`: more input
    /// needed.
    pub(super) fn next_message(
        &mut self,
        input: &mut BytesMut,
    ) -> Result<Option<RawMessage>, SessionError> {
        loop {
            let before = input.len();
            let raw = self.decoder.decode(input);
            self.received += (before - input.len()) as u64;
            self.acknowledge_if_due()?;
            let Some(raw) = raw? else {
                return Ok(None);
            };
            if !self.handle_control(&raw)? {
                return Ok(Some(raw));
            }
        }
    }

    /// Types a message's body, AMF within this session's limits. A body
    /// that does not match its type is an error the caller may answer
    /// (a command with bad arguments gets `_error`) or raise
    /// ([`SessionError::message`]).
    pub(super) fn decode(&self, raw: &RawMessage) -> Result<Message, MessageError> {
        Message::decode(raw, &self.amf_limits)
    }

    /// Applies a protocol control message; `false` if it is not one, or is
    /// a user control event for the caller.
    fn handle_control(&mut self, raw: &RawMessage) -> Result<bool, SessionError> {
        if !raw.type_id.is_control() {
            return Ok(false);
        }
        let message = self
            .decode(raw)
            .map_err(|source| SessionError::message(raw, source))?;
        match &message {
            // Applied by the decoder at the right byte already.
            Message::SetChunkSize(_) | Message::Abort(_) => {}
            Message::WindowAckSize(window) => {
                self.peer_window = Some((*window).max(limits::ACK_WINDOW_MIN));
            }
            // Nothing to do: we do not throttle on the peer's view.
            Message::Acknowledgement(_) | Message::SetPeerBandwidth { .. } => {}
            Message::UserControl(UserControl::PingRequest(t)) => {
                let pong = Message::UserControl(UserControl::PingResponse(*t));
                self.send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &pong)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn acknowledge_if_due(&mut self) -> Result<(), EncodeError> {
        let Some(window) = self.peer_window else {
            return Ok(());
        };
        if self.received - self.acknowledged < u64::from(window) {
            return Ok(());
        }
        self.acknowledged = self.received;
        // The sequence number wraps at 2^32 (§5.4.3).
        let ack = Message::Acknowledgement(self.received as u32);
        self.send(chunk_streams::CONTROL, MessageStreamId::CONNECTION, &ack)
    }

    /// Encodes `message` for sending, at timestamp 0.
    pub(super) fn send(
        &mut self,
        chunk_stream: ChunkStreamId,
        stream_id: MessageStreamId,
        message: &Message,
    ) -> Result<(), EncodeError> {
        self.send_at(chunk_stream, stream_id, Timestamp(0), message)
    }

    pub(super) fn send_at(
        &mut self,
        chunk_stream: ChunkStreamId,
        stream_id: MessageStreamId,
        timestamp: Timestamp,
        message: &Message,
    ) -> Result<(), EncodeError> {
        self.scratch.clear();
        message.encode(&mut self.scratch);
        let header = MessageHeader {
            chunk_stream,
            timestamp,
            type_id: message.type_id(),
            stream_id,
        };
        self.encoder
            .encode(&header, &self.scratch, &mut self.outbound)
    }

    /// Sends a command on the connection's or a stream's command chunk
    /// stream.
    pub(super) fn send_command(
        &mut self,
        stream_id: MessageStreamId,
        command: Command,
    ) -> Result<(), EncodeError> {
        let chunk_stream = if stream_id == MessageStreamId::CONNECTION {
            chunk_streams::COMMAND
        } else {
            chunk_streams::STREAM_COMMAND
        };
        self.send(chunk_stream, stream_id, &Message::Command(command))
    }

    pub(super) fn send_status(
        &mut self,
        stream_id: MessageStreamId,
        status: Status,
    ) -> Result<(), EncodeError> {
        self.send_command(stream_id, Command::OnStatus(status))
    }

    /// Announces and switches to a new outbound chunk size.
    pub(super) fn set_chunk_size(&mut self, chunk_size: u32) -> Result<(), EncodeError> {
        let announce = Message::SetChunkSize(chunk_size);
        self.send(
            chunk_streams::CONTROL,
            MessageStreamId::CONNECTION,
            &announce,
        )?;
        self.encoder.set_chunk_size(chunk_size)
    }

    /// See [`chunk::Decoder::set_message_size_max`].
    pub(super) fn set_message_size_max(&mut self, max: u32) {
        self.decoder.set_message_size_max(max);
    }

    pub(super) fn chunk_size_out(&self) -> u32 {
        self.encoder.chunk_size()
    }

    /// Queues bytes built elsewhere (the handshake).
    pub(super) fn queue_raw(&mut self, bytes: &[u8]) {
        self.outbound.extend_from_slice(bytes);
    }

    pub(super) fn take_transmit(&mut self) -> Option<Bytes> {
        if self.outbound.is_empty() {
            None
        } else {
            // The whole buffer, not a split of it: a split would leave the
            // allocation (the 3 KB handshake answer's, for one) to be
            // reused for the session's few later messages, held by every
            // connection for its life.
            Some(std::mem::take(&mut self.outbound).freeze())
        }
    }

    /// Bytes of RTMP chunks received so far.
    pub(super) fn bytes_received(&self) -> u64 {
        self.received
    }
}
