//! A blocking HTTP/1.1 client that keeps its connection, as an HLS player
//! does: one request at a time, each answer read by its `Content-Length`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// An answer: status, headers (names lower-cased) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        (self.headers.iter())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub struct Http {
    addr: SocketAddr,
    socket: TcpStream,
    buffered: Vec<u8>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Http {
        let socket = TcpStream::connect(addr).expect("connects");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Http {
            addr,
            socket,
            buffered: Vec::new(),
        }
    }

    /// `GET target` with `headers`, on the kept connection.
    pub fn get(&mut self, target: &str, headers: &[(&str, &str)]) -> Answer {
        self.request("GET", target, headers)
    }

    pub fn request(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.socket
            .write_all(request.as_bytes())
            .expect("request sent");
        let head_end = loop {
            if let Some(end) = find(&self.buffered, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill();
        };
        let head = String::from_utf8(self.buffered[..head_end].to_vec()).expect("utf-8 head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = (headers.iter())
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let len = if method == "HEAD" { 0 } else { len };
        while self.buffered.len() < head_end + len {
            self.fill();
        }
        let body = self.buffered[head_end..head_end + len].to_vec();
        self.buffered.drain(..head_end + len);
        Answer {
            status,
            headers,
            body,
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = loop {
            // A signal (a child process ending) may interrupt the wait.
            match self.socket.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                read => break read.expect("reads"),
            }
        };
        assert!(n > 0, "the server closed the connection");
        self.buffered.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// GETs `target` on a new connection until it answers 200 (the stream's
/// first segment may take a few seconds), for at most `limit`.
pub fn get_when_ready(addr: SocketAddr, target: &str, limit: Duration) -> Answer {
    let deadline = Instant::now() + limit;
    loop {
        let answer = Http::connect(addr).get(target, &[]);
        if answer.status == 200 || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
