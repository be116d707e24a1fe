//! The `ringcast` binary serving in its own process, for the tests that
//! need signals or the real command line; killed when dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::TIMEOUT;

/// A running `ringcast serve`; its log lines come through `lines`.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// The first RTMP address, as the log names it (port 0 resolved).
    pub addr: SocketAddr,
    /// The admin API's address, if it is on.
    pub admin: Option<SocketAddr>,
    /// The HTTP-FLV listener's first address, if it is on.
    pub http: Option<SocketAddr>,
    /// The RTMPS listener's first address, if ARGS gave one.
    pub rtmps: Option<SocketAddr>,
    /// The HTTPS-FLV and WSS listener's first address, if ARGS gave one.
    pub https: Option<SocketAddr>,
}

/// The first address of a `... listening addresses=[A, B]` log line.
fn first_listed(line: &str) -> Option<SocketAddr> {
    line.split(['[', ']'])
        .nth(1)
        .and_then(|list| list.split(',').next())
        .and_then(|a| a.trim().parse().ok())
}

impl Served {
    /// `ringcast serve ARGS` (give `--listen 127.0.0.1:0` or a config
    /// that does), once it logged that it listens. HTTP players get an
    /// ephemeral port ([`Served::http`]) unless ARGS say `--http`.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Served {
        Served::start_with(args, |_| {})
    }

    /// [`Served::start`] in a process that may write files of at most
    /// `bytes` (RLIMIT_FSIZE): a write past it fails with EFBIG, as one
    /// to a full disk fails with ENOSPC.
    pub fn start_with_file_size_limit<S: AsRef<OsStr>>(args: &[S], bytes: u64) -> Served {
        Served::start_with(args, |command| {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            // SAFETY: runs in the child between fork and exec, and only
            // calls setrlimit(2), which is async-signal-safe.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        })
    }

    fn start_with<S: AsRef<OsStr>>(args: &[S], configure: impl FnOnce(&mut Command)) -> Served {
        let http_given = args.iter().any(|arg| arg.as_ref() == "--http");
        let http: &[&str] = if http_given {
            &[]
        } else {
            &["--http", "127.0.0.1:0"]
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_ringcast"));
        configure(&mut command);
        let mut child = command
            .arg("serve")
            .args(args)
            .args(http)
            .env("RUST_LOG", "info")
            // No NO_COLOR: the log is a pipe, so it must come without
            // colour codes on its own (lines are parsed below).
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("piped");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let mut served = Served {
            child,
            lines,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            admin: None,
            http: None,
            rtmps: None,
            https: None,
        };
        // The admin API is up before the shards report listening.
        let listening = loop {
            let line = served
                .next_line()
                .unwrap_or_else(|| panic!("the server did not start"));
            if line.contains("admin API and /metrics listening") {
                served.admin = line
                    .split("addr=")
                    .nth(1)
                    .and_then(|a| a.trim().parse().ok());
            }
            if line.contains("HTTP-FLV and WebSocket-FLV listening") {
                served.http = first_listed(&line);
            }
            if line.contains("RTMPS listening") {
                served.rtmps = first_listed(&line);
            }
            if line.contains("HTTPS-FLV and WSS listening") {
                served.https = first_listed(&line);
            }
            if line.contains("ringcast listening") {
                break line;
            }
            assert!(!line.contains("ERROR"), "the server did not start: {line}");
        };
        served.addr = first_listed(&listening).expect("the address in the log line");
        served
    }

    /// The next log line within [`TIMEOUT`]; `None` once the log ended.
    fn next_line(&self) -> Option<String> {
        self.lines.recv_timeout(TIMEOUT).ok()
    }

    /// Waits for a log line containing `text` and returns it.
    pub fn wait_for_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no log line with {text:?}"),
            }
        }
    }

    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on the child this test started and has not
        // reaped, so the pid is still its own.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait works").is_none()
    }

    /// Waits for the process to exit (killing it after [`TIMEOUT`]) and
    /// returns its status and the rest of its log.
    pub fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait works") {
                break status;
            }
            if Instant::now() > deadline {
                panic!("still running {TIMEOUT:?} later");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let rest = std::iter::from_fn(|| self.next_line()).collect();
        (status, rest)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
