//! An HTTP-FLV or WebSocket-FLV player on tokio-uring, plain or over TLS:
//! the [`http_flv::Client`] state machine over a socket. Like the RTMP
//! player it keeps only the first [`MEDIA_PREFIX`] bytes of each tag body
//! and hands each tag to its [`Watch`].

use std::hash::{BuildHasher, Hasher, RandomState};

use bytes::BytesMut;
use tokio::sync::Notify;

use super::{MEDIA_PREFIX, Plan, Watch};
use crate::http_flv::{Client, Event};
use ringcast_client::{Disconnect, OwnedSocket, SETUP_TIMEOUT};
use ringcast_rtmp::protocol::Timestamp;

/// A read buffer has at least this much room before each read, and grows
/// by [`READ_GROW_BYTES`] when it has less: as the RTMP client reads.
pub(super) const READ_ROOM_BYTES_MIN: usize = 16 * 1024;
pub(super) const READ_GROW_BYTES: usize = 64 * 1024;

/// Connects, requests the stream and measures it until `stop` is notified
/// (`Ok`) or the connection ends (why, in words).
pub(super) async fn play(
    plan: &Plan,
    watch: &mut Watch<'_>,
    stop: &Notify,
) -> Result<(), Disconnect> {
    let scheme = plan.scheme();
    let mut client = Client::new(
        plan.protocol,
        &plan.authority,
        &plan.http_target(),
        MEDIA_PREFIX,
        nonce(),
    );
    let mut input = BytesMut::new();
    let setup = async {
        let socket = super::connect(plan).await?;
        watch.request();
        let read = accepted(&socket, &mut client, &mut input, scheme).await?;
        Ok::<_, Disconnect>((socket, read))
    };
    // A player still waiting for its answer when the run ends leaves
    // without one: it never played, and was not disconnected.
    let (socket, read_in_setup) = tokio::select! {
        setup = tokio::time::timeout(SETUP_TIMEOUT, setup) => {
            setup.unwrap_or_else(|_| Err(format!("{scheme} request timed out")))?
        }
        () = stop.notified() => return Ok(()),
    };
    watch.playing();
    watch.read(read_in_setup);
    loop {
        let ended = observe(&mut client, &mut input, watch, scheme);
        send(&socket, &mut client).await?;
        if let Some(how) = ended? {
            return Err(how);
        }
        tokio::select! {
            read = read(&socket, &mut input) => watch.read(read? as u64),
            () = stop.notified() => return Ok(()),
        }
    }
}

/// Sends the request and reads until the server accepts it; returns the
/// bytes read.
async fn accepted(
    socket: &OwnedSocket,
    client: &mut Client,
    input: &mut BytesMut,
    scheme: &str,
) -> Result<u64, Disconnect> {
    let mut bytes = 0;
    loop {
        send(socket, client).await?;
        match client.decode(input).map_err(|e| format!("{scheme}: {e}"))? {
            Some(Event::Playing) => return Ok(bytes),
            Some(Event::Ended(how)) => return Err(how),
            // Tags come only once playing.
            Some(Event::Tag(_)) => return Err(format!("{scheme}: a tag before the head")),
            None => bytes += read(socket, input).await? as u64,
        }
    }
}

/// Takes the events of what was read: tags go to the watch. Returns how
/// the server ended the stream, if it did.
fn observe(
    client: &mut Client,
    input: &mut BytesMut,
    watch: &mut Watch<'_>,
    scheme: &str,
) -> Result<Option<Disconnect>, Disconnect> {
    let mut batch = watch.batch();
    while let Some(event) = client.decode(input).map_err(|e| format!("{scheme}: {e}"))? {
        match event {
            Event::Tag(tag) => batch.media(tag.kind, Timestamp(tag.timestamp_ms), &tag.body),
            Event::Ended(how) => return Ok(Some(how)),
            Event::Playing => {}
        }
    }
    Ok(None)
}

/// Writes what the client has queued (the request, pongs, a close).
async fn send(socket: &OwnedSocket, client: &mut Client) -> Result<(), Disconnect> {
    while let Some(bytes) = client.poll_transmit() {
        (socket.write_all(bytes).await).map_err(|e| format!("write: {e}"))?;
    }
    Ok(())
}

/// Reads once into `input`; the end of the connection is an error, in the
/// RTMP player's words.
async fn read(socket: &OwnedSocket, input: &mut BytesMut) -> Result<usize, Disconnect> {
    if input.capacity() - input.len() < READ_ROOM_BYTES_MIN {
        input.reserve(READ_GROW_BYTES);
    }
    let buffer = std::mem::take(input);
    let (result, buffer) = socket.read(buffer).await;
    *input = buffer;
    let n = result.map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("server closed the connection".into());
    }
    Ok(n)
}

/// 16 bytes no other player has: the WebSocket key's nonce, and the seed
/// of its masks. `RandomState` draws fresh keys per instance.
fn nonce() -> [u8; 16] {
    let draw = || RandomState::new().build_hasher().finish().to_le_bytes();
    let mut nonce = [0; 16];
    let (a, b) = nonce.split_at_mut(8);
    a.copy_from_slice(&draw());
    b.copy_from_slice(&draw());
    nonce
}
