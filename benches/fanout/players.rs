//! The players: one thread, one tokio-uring runtime, one task per
//! connection.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use ringcast::session::{ClientEvent, ClientSession, MediaKind};
use tokio::sync::Notify;
use tokio_uring::net::TcpStream;

use crate::Shared;
use crate::workload;

pub const THREAD_NAME: &str = "fanout-players";
/// Each player's reused read buffer.
const READ_BYTES: usize = 64 * 1024;
/// Not the shard's ring size, so that the shard's ring can be told
/// apart in `/proc/self/fdinfo`.
const RING_ENTRIES: u32 = 1024;

/// Starts `count` players; each counts `live_bytes` into
/// `shared.live_bytes` once ready, then holds its connection until
/// `shared.release`.
pub fn spawn(
    addr: SocketAddr,
    count: usize,
    live_bytes: u64,
    shared: Arc<Shared>,
) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            tokio_uring::builder()
                .entries(RING_ENTRIES)
                .start(run(addr, count, live_bytes, shared));
        })
        .map_err(|e| format!("spawning the players: {e}"))
}

async fn run(addr: SocketAddr, count: usize, live_bytes: u64, shared: Arc<Shared>) {
    let release = Rc::new(Notify::new());
    let tasks: Vec<_> = (0..count)
        .map(|_| tokio_uring::spawn(player(addr, live_bytes, shared.clone(), release.clone())))
        .collect();
    while !shared.release.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    release.notify_waiters();
    for task in tasks {
        let _ = task.await;
    }
}

async fn player(addr: SocketAddr, live_bytes: u64, shared: Arc<Shared>, release: Rc<Notify>) {
    let released = release.notified();
    tokio::pin!(released);
    let stream = tokio::select! {
        result = play(addr, live_bytes, &shared) => match result {
            Ok(stream) => stream,
            Err(error) => return shared.fail(format!("player: {error}")),
        },
        () = &mut released => return,
    };
    // Closing now would make the shard work inside the window.
    released.await;
    drop(stream);
}

async fn play(addr: SocketAddr, live_bytes: u64, shared: &Shared) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut session = workload::client_session(addr);
    let buffer = start(&stream, &mut session).await?;
    shared.ready.fetch_add(1, Ordering::Relaxed);
    drain(&stream, buffer, live_bytes, shared).await?;
    shared.done.fetch_add(1, Ordering::Relaxed);
    Ok(stream)
}

/// Where a player is on its way to live frames.
#[derive(Default)]
struct Progress {
    create_stream: Option<f64>,
    playing: bool,
    headers: usize,
}

/// Connects and plays `bench` until `Play.Start` and both sequence
/// headers have arrived; returns the read buffer for reuse.
async fn start(stream: &TcpStream, session: &mut ClientSession) -> Result<Vec<u8>, String> {
    let mut input = BytesMut::new();
    let mut buffer = Vec::with_capacity(READ_BYTES);
    let mut progress = Progress::default();
    while !(progress.playing && progress.headers >= 2) {
        while let Some(bytes) = session.poll_transmit() {
            let (result, _) = stream.write_all(bytes).await;
            result.map_err(|e| format!("writing: {e}"))?;
        }
        let n;
        (n, buffer) = read(stream, buffer).await?;
        input.extend_from_slice(&buffer[..n]);
        session
            .handle_input(&mut input)
            .map_err(|e| e.to_string())?;
        while let Some(event) = session.poll_event() {
            progress.handle(session, event)?;
        }
    }
    if !input.is_empty() {
        return Err(format!(
            "{} unexpected bytes before live frames",
            input.len()
        ));
    }
    Ok(buffer)
}

impl Progress {
    fn handle(&mut self, session: &mut ClientSession, event: ClientEvent) -> Result<(), String> {
        match event {
            ClientEvent::Connected { .. } => {
                self.create_stream = Some(session.create_stream().map_err(|e| e.to_string())?);
            }
            ClientEvent::StreamCreated {
                transaction_id,
                stream_id,
            } if Some(transaction_id) == self.create_stream => {
                session
                    .play(stream_id, workload::STREAM)
                    .map_err(|e| e.to_string())?;
            }
            ClientEvent::Media { media, .. } if media.kind != MediaKind::Data => self.headers += 1,
            ClientEvent::ConnectRejected { info } => {
                return Err(format!("connect rejected: {info:?}"));
            }
            ClientEvent::Error(response) => return Err(format!("error: {response:?}")),
            event if event.is_play_start() => self.playing = true,
            _ => {}
        }
        Ok(())
    }
}

/// Counts live bytes until `live_bytes` have arrived.
async fn drain(
    stream: &TcpStream,
    mut buffer: Vec<u8>,
    live_bytes: u64,
    shared: &Shared,
) -> Result<(), String> {
    let mut received = 0u64;
    while received < live_bytes {
        let n;
        (n, buffer) = read(stream, buffer).await?;
        received += n as u64;
        shared.live_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// One read into `buffer` (emptied first); 0 bytes is an error here.
async fn read(stream: &TcpStream, mut buffer: Vec<u8>) -> Result<(usize, Vec<u8>), String> {
    buffer.clear();
    let (result, buffer) = stream.read(buffer).await;
    match result {
        Ok(0) => Err("server closed the connection".into()),
        Ok(n) => Ok((n, buffer)),
        Err(e) => Err(format!("reading: {e}")),
    }
}
