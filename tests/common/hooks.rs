//! A hook service for the tests of access hooks (`on_play` and the
//! rest): a small HTTP/1.1 server on loopback, plain or over TLS, that
//! records each request the server POSTs (path, media type, body, and the
//! body's fields: JSON, or nginx-rtmp's form) and answers as told.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::TIMEOUT;
use super::pki::Cert;

/// What the test hook service answers.
#[derive(Clone, Debug)]
pub enum Answer {
    Status(u16),
    /// This status with this body (SRS's `0` or `{"code":0}`).
    Body(u16, &'static str),
    Redirect(&'static str),
    /// Answers only after every hook timeout in these tests.
    Hang,
}

/// One request the service was sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub content_type: String,
    pub body: String,
    /// The body's fields: the JSON object, or the form's fields (the
    /// first value of each name, decoded).
    pub fields: Value,
}

type Answerer = dyn Fn(&Value) -> Answer + Send + Sync;

/// A small HTTP/1.1 service on loopback that records each request it is
/// POSTed and answers as told; keeps connections alive like a real one.
pub struct HookService {
    addr: SocketAddr,
    tls: bool,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HookService {
    pub fn start(answer: impl Fn(&Value) -> Answer + Send + Sync + 'static) -> HookService {
        HookService::listen(None, Arc::new(answer))
    }

    /// The same over TLS, serving `cert` (its names must include
    /// 127.0.0.1).
    pub fn start_tls(
        cert: &Cert,
        answer: impl Fn(&Value) -> Answer + Send + Sync + 'static,
    ) -> HookService {
        let server = ringcast_tls::ServerTls::load(
            std::slice::from_ref(&cert.files),
            std::time::SystemTime::now(),
        )
        .expect("the hook service's certificate");
        HookService::listen(Some(server.config()), Arc::new(answer))
    }

    fn listen(tls: Option<Arc<rustls::ServerConfig>>, answer: Arc<Answerer>) -> HookService {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (recorded, stopping, secure) = (requests.clone(), stop.clone(), tls.is_some());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (recorded, answer, tls) =
                            (recorded.clone(), answer.clone(), tls.clone());
                        std::thread::spawn(move || {
                            stream.set_nonblocking(false).expect("blocking");
                            stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
                            match tls {
                                None => serve(stream, &recorded, &*answer),
                                Some(config) => {
                                    let session =
                                        rustls::ServerConnection::new(config).expect("tls");
                                    let stream = rustls::StreamOwned::new(session, stream);
                                    serve(stream, &recorded, &*answer);
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HookService {
            addr,
            tls: secure,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> ringcast::config::HookUrl {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
            .parse()
            .expect("hook url")
    }

    /// Waits until a call with `action` (and `stream`, if given) came.
    pub fn wait_for(&self, action: &str, stream: Option<&str>) -> Value {
        self.wait_for_call(&format!("{action} call"), |c| {
            c["action"] == action && stream.is_none_or(|s| c["stream"] == s)
        })
    }

    /// Waits until a call matching `want` came and returns its fields.
    pub fn wait_for_call(&self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_request(what, |r| want(&r.fields)).fields
    }

    /// Waits until a request matching `want` came and returns it.
    pub fn wait_for_request(&self, what: &str, want: impl Fn(&Request) -> bool) -> Request {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(request) = self.requests().into_iter().find(&want) {
                return request;
            }
            assert!(
                Instant::now() < deadline,
                "no {what}; got {:?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every call's fields so far, in the order they came.
    pub fn calls(&self) -> Vec<Value> {
        self.requests().into_iter().map(|r| r.fields).collect()
    }

    /// Every request so far, in the order they came.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
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
fn serve<S: Read + Write>(stream: S, recorded: &Mutex<Vec<Request>>, answer: &Answerer) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0;
        let mut content_type = String::new();
        let mut line = String::new();
        let path = match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let path = line.strip_prefix("POST ").expect("hooks POST");
                path.split(' ').next().unwrap_or_default().to_owned()
            }
        };
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().expect("length");
            }
            if let Some(value) = lower.strip_prefix("content-type:") {
                content_type = value.trim().to_owned();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8(body).expect("a UTF-8 body");
        let fields = if content_type == "application/x-www-form-urlencoded" {
            form_fields(&body)
        } else {
            serde_json::from_str(&body).expect("a JSON body")
        };
        let request = Request {
            path,
            content_type,
            body,
            fields: fields.clone(),
        };
        recorded.lock().unwrap().push(request);
        let response = match answer(&fields) {
            Answer::Status(code) => format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n"),
            Answer::Body(code, body) => format!(
                "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
            Answer::Redirect(to) => {
                format!("HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
            }
            Answer::Hang => {
                std::thread::sleep(Duration::from_millis(1500));
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_owned()
            }
        };
        let stream = reader.get_mut();
        if stream.write_all(response.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
    }
}

/// A form's fields, the first value of each name, `+` and `%XX` decoded.
fn form_fields(body: &str) -> Value {
    let mut fields = Map::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = value.replace('+', " ");
        let value = percent_encoding::percent_decode_str(&value).decode_utf8_lossy();
        fields
            .entry(name.to_owned())
            .or_insert_with(|| Value::from(value.into_owned()));
    }
    Value::Object(fields)
}
