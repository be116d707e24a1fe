//! A hook service for the tests of access hooks (`on_play` and the
//! rest): a small HTTP/1.1 server on loopback that records each JSON body
//! the server POSTs and answers as told.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TIMEOUT;

/// What the test hook service answers.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    Redirect(&'static str),
    /// Answers only after every hook timeout in these tests.
    Hang,
}

/// A small HTTP/1.1 service on loopback that records each JSON body it is
/// POSTed and answers as told; keeps connections alive like a real one.
pub struct HookService {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HookService {
    pub fn start(answer: impl Fn(&Value) -> Answer + Send + Sync + 'static) -> HookService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let (recorded, stopping) = (calls.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (recorded, answer) = (recorded.clone(), answer.clone());
                        std::thread::spawn(move || serve(stream, &recorded, &*answer));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HookService {
            addr,
            calls,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> ringcast::config::HookUrl {
        format!("http://{}{path}", self.addr)
            .parse()
            .expect("hook url")
    }

    /// Waits until a call with `action` (and `stream`, if given) came.
    pub fn wait_for(&self, action: &str, stream: Option<&str>) -> Value {
        self.wait_for_call(&format!("{action} call"), |c| {
            c["action"] == action && stream.is_none_or(|s| c["stream"] == s)
        })
    }

    /// Waits until a call matching `want` came and returns it.
    pub fn wait_for_call(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(call) = self.calls().into_iter().find(&want) {
                return call;
            }
            assert!(
                Instant::now() < deadline,
                "no {what}; got {:?}",
                self.calls()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every call so far, in the order they came.
    pub fn calls(&self) -> Vec<Value> {
        self.calls.lock().unwrap().clone()
    }
}

impl Drop for HookService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves requests on one connection until the client closes it.
fn serve(
    mut stream: TcpStream,
    recorded: &Mutex<Vec<Value>>,
    answer: &(dyn Fn(&Value) -> Answer + Send + Sync),
) {
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut length = 0;
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => assert!(line.starts_with("POST "), "hooks POST: {line}"),
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().expect("length");
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let call: Value = serde_json::from_slice(&body).expect("a JSON body");
        recorded.lock().unwrap().push(call.clone());
        let response = match answer(&call) {
            Answer::Status(code) => format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n"),
            Answer::Redirect(to) => {
                format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
            }
            Answer::Hang => {
                std::thread::sleep(Duration::from_millis(1500));
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_owned()
            }
        };
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
