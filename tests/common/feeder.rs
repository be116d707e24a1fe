//! A publisher thread that feeds numbered frames to one or more servers
//! until dropped: the source the relay tests pull and push.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Client;
use super::media;

/// Publishes `stream` to every address, numbered frames at 30 fps with a
/// keyframe every 10, until dropped; a server that goes away is dropped
/// from the list, the others go on.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    pub fn start(addrs: &[SocketAddr], stream: &str) -> Feeder {
        let mut publishers: Vec<_> = addrs
            .iter()
            .map(|addr| {
                let mut client = Client::connect(*addr, "live");
                let id = client.publish(stream);
                client.send(id, &media::avc_header());
                (client, id)
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u32;
            while !stopping.load(Ordering::Relaxed) {
                let frame = media::video(n, 10, 500);
                publishers.retain_mut(|(client, id)| client.try_send(*id, &frame).is_ok());
                n += 1;
                std::thread::sleep(Duration::from_millis(33));
            }
        });
        Feeder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
