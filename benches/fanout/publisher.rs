//! The publisher: a blocking socket and a [`ClientSession`] on its own
//! thread.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringcast::protocol::MessageStreamId;
use ringcast::session::{ClientEvent, ClientSession};

use crate::Shared;
use crate::workload::{self, Workload};

pub const THREAD_NAME: &str = "fanout-publish";
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes gathered before one write: a few frames per system call, as
/// an encoder behind a socket buffer writes.
const WRITE_BYTES: usize = 64 * 1024;

/// How far the publisher may run ahead of the players.
#[derive(Clone, Copy)]
pub struct Pacing {
    pub players: u64,
    pub window_bytes: u64,
}

impl Pacing {
    /// A batch that starts `before` wire bytes into the stream (per
    /// player) may go once the players have received, on average, all
    /// but `window_bytes` of them.
    fn allows(&self, before: u64, received: u64) -> bool {
        received >= self.players * before.saturating_sub(self.window_bytes)
    }
}

/// Connects, publishes `live/bench` with its sequence headers, sets
/// `shared.published`, waits for `shared.go`, publishes the workload,
/// and stays connected until `shared.release` (leaving earlier would
/// send players an unpublish).
pub fn spawn(
    addr: SocketAddr,
    workload: Workload,
    pacing: Pacing,
    shared: Arc<Shared>,
) -> Result<JoinHandle<Result<(), String>>, String> {
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            let result = run(addr, &workload, pacing, &shared);
            if let Err(error) = &result {
                shared.fail(format!("publisher: {error}"));
            }
            result
        })
        .map_err(|e| format!("spawning the publisher: {e}"))
}

fn run(
    addr: SocketAddr,
    workload: &Workload,
    pacing: Pacing,
    shared: &Shared,
) -> Result<(), String> {
    let mut publisher = Publisher::connect(addr)?;
    shared.published.store(true, Ordering::Relaxed);
    while !shared.go.load(Ordering::Relaxed) {
        if shared.release.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    publisher.publish(workload, pacing, shared)?;
    while !shared.release.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

struct Publisher {
    socket: TcpStream,
    session: ClientSession,
    input: BytesMut,
    stream_id: MessageStreamId,
}

impl Publisher {
    fn connect(addr: SocketAddr) -> Result<Publisher, String> {
        let socket = TcpStream::connect(addr).map_err(|e| format!("connecting: {e}"))?;
        socket.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut publisher = Publisher {
            socket,
            session: workload::client_session(addr),
            input: BytesMut::new(),
            stream_id: MessageStreamId(0),
        };
        publisher.wait_for("connect", |e| matches!(e, ClientEvent::Connected { .. }))?;
        let transaction = publisher
            .session
            .create_stream()
            .map_err(|e| e.to_string())?;
        let created = publisher.wait_for("createStream", |e| {
            matches!(e, ClientEvent::StreamCreated { transaction_id, .. } if *transaction_id == transaction)
        })?;
        if let ClientEvent::StreamCreated { stream_id, .. } = created {
            publisher.stream_id = stream_id;
        }
        let id = publisher.stream_id;
        publisher
            .session
            .publish(id, workload::STREAM)
            .map_err(|e| e.to_string())?;
        publisher.wait_for("Publish.Start", ClientEvent::is_publish_start)?;
        for media in Workload::headers() {
            publisher
                .session
                .send_media(id, &media)
                .map_err(|e| e.to_string())?;
        }
        publisher.flush()?;
        Ok(publisher)
    }

    /// Publishes every batch of `workload` (a video frame and the audio
    /// before it), within the pacing window.
    fn publish(
        &mut self,
        workload: &Workload,
        pacing: Pacing,
        shared: &Shared,
    ) -> Result<(), String> {
        let mut out = Vec::with_capacity(2 * WRITE_BYTES);
        for n in 0..workload.frames() {
            let before = workload.bytes_before(n);
            if !pacing.allows(before, shared.live_bytes.load(Ordering::Relaxed)) {
                self.write(&mut out)?;
                while !pacing.allows(before, shared.live_bytes.load(Ordering::Relaxed)) {
                    if shared.release.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            }
            for media in workload.batch(n) {
                self.session
                    .send_media(self.stream_id, &media)
                    .map_err(|e| e.to_string())?;
            }
            while let Some(bytes) = self.session.poll_transmit() {
                out.extend_from_slice(&bytes);
            }
            if out.len() >= WRITE_BYTES {
                self.write(&mut out)?;
            }
        }
        self.write(&mut out)
    }

    fn write(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.socket
            .write_all(out)
            .map_err(|e| format!("writing frames: {e}"))?;
        out.clear();
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        while let Some(bytes) = self.session.poll_transmit() {
            self.socket
                .write_all(&bytes)
                .map_err(|e| format!("writing: {e}"))?;
        }
        Ok(())
    }

    /// Reads until an event matches `want`.
    fn wait_for(
        &mut self,
        what: &str,
        want: impl Fn(&ClientEvent) -> bool,
    ) -> Result<ClientEvent, String> {
        let deadline = Instant::now() + SETUP_TIMEOUT;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            self.flush()?;
            while let Some(event) = self.session.poll_event() {
                if want(&event) {
                    return Ok(event);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            self.socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .map_err(|e| e.to_string())?;
            match self.socket.read(&mut buffer) {
                Ok(0) => return Err(format!("server closed waiting for {what}")),
                Ok(n) => {
                    self.input.extend_from_slice(&buffer[..n]);
                    self.session
                        .handle_input(&mut self.input)
                        .map_err(|e| e.to_string())?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }
}
