//! HTTP hooks: `on_connect`, `on_publish`, `on_play` ask an outside
//! service before a client goes ahead; `on_publish_done` and
//! `on_play_done` tell it afterwards. Each is a POST of a JSON [`Event`];
//! `on_record_done`, told of each completed recording file, of a
//! [`RecordDone`].
//!
//! The answer, as with nginx-rtmp: any 2xx allows; a 3xx with a `Location`
//! allows under another stream name (the last path segment of the
//! location); anything else refuses. No answer in time, or no connection,
//! is a failure that the caller turns into an allow or a deny
//! (`access.hook_fail_open`).
//!
//! The calls run on a thread of their own with a small tokio runtime and a
//! pooled HTTP/1.1 client (hyper): shards hand a call over a bounded
//! channel and await the answer without blocking their reactor.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{info, warn};

use crate::config::{HookUrl, Redacted};
use crate::limits;

/// What a hook is told: the fields nginx-rtmp and SRS send, under the
/// names SRS uses.
#[derive(Clone, Debug, Serialize)]
pub struct Event<'a> {
    /// `on_connect`, `on_publish`, `on_play`, `on_publish_done`,
    /// `on_play_done`.
    pub action: &'static str,
    /// The client: `shard-serial`, as the admin API names it (and kicks
    /// it by).
    pub client_id: String,
    /// The client's address and port.
    pub client: SocketAddr,
    /// The client's address alone, for address-based decisions.
    pub ip: String,
    pub app: &'a str,
    /// The stream name without its query; absent for `on_connect`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<&'a str>,
    /// The query the client sent: the stream name's for publish and play,
    /// the app's and tcUrl's for connect.
    pub args: &'a str,
    #[serde(rename = "tcUrl", skip_serializing_if = "Option::is_none")]
    pub tc_url: Option<&'a str>,
    /// How the client came: `rtmp`, `http-flv` or `ws-flv`.
    pub protocol: &'static str,
}

/// What `on_record_done` is told: a recording file is complete.
#[derive(Clone, Debug, Serialize)]
pub struct RecordDone<'a> {
    /// `on_record_done`.
    pub action: &'static str,
    pub app: &'a str,
    pub stream: &'a str,
    /// The file, as the recording named it.
    pub path: &'a str,
    /// `flv` or `mp4`.
    pub format: &'static str,
    pub duration_ms: u64,
    pub bytes: u64,
    /// The publisher, as the other hooks name it; absent for a pull.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<&'a str>,
}

/// How a hook call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// A redirect to this stream name.
    Renamed(String),
    /// Answered with this status: a refusal.
    Refused(u16),
    /// No usable answer: why.
    Failed(String),
}

/// The handle shards call hooks through; cloned into each shard.
#[derive(Clone, Debug)]
pub struct Hooks {
    calls: mpsc::Sender<Call>,
}

#[derive(Debug)]
struct Call {
    url: Uri,
    body: Bytes,
    timeout: Duration,
    /// `None` for a notification: failures are logged by the hook thread.
    answer: Option<oneshot::Sender<Outcome>>,
}

impl Hooks {
    /// Starts the hook thread; it ends when every handle is dropped.
    pub fn start() -> io::Result<(Hooks, JoinHandle<()>)> {
        let (calls, queue) = mpsc::channel(limits::HOOK_CALLS_MAX);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("hooks".into())
            .spawn(move || runtime.block_on(serve(queue)))?;
        Ok((Hooks { calls }, thread))
    }

    /// Asks `url` about `event`, waiting at most `timeout` (queueing
    /// included).
    pub async fn ask(&self, url: &HookUrl, event: &Event<'_>, timeout: Duration) -> Outcome {
        let (answer, answered) = oneshot::channel();
        if let Err(failure) = self.submit(url, event, timeout, Some(answer)) {
            return failure;
        }
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Failed("the hook thread stopped".into()),
            Err(_) => Outcome::Failed(no_answer(timeout)),
        }
    }

    /// Tells `url` about `event` without waiting. A call that cannot be
    /// queued is returned, for the caller to log within its budget; one
    /// that fails later is logged by the hook thread, once per outage and
    /// interval, not once per call.
    pub fn tell(
        &self,
        url: &HookUrl,
        event: &impl Serialize,
        timeout: Duration,
    ) -> Result<(), String> {
        match self.submit(url, event, timeout, None) {
            Ok(()) => Ok(()),
            Err(Outcome::Failed(why)) => Err(why),
            Err(_) => Err("the call was not queued".into()),
        }
    }

    fn submit(
        &self,
        url: &HookUrl,
        event: &impl Serialize,
        timeout: Duration,
        answer: Option<oneshot::Sender<Outcome>>,
    ) -> Result<(), Outcome> {
        let body = serde_json::to_vec(event)
            .map_err(|e| Outcome::Failed(format!("cannot encode the event: {e}")))?;
        let call = Call {
            url: url.uri().clone(),
            body: Bytes::from(body),
            timeout,
            answer,
        };
        self.calls.try_send(call).map_err(|e| {
            Outcome::Failed(match e {
                mpsc::error::TrySendError::Full(_) => {
                    format!("{} hook calls are already waiting", limits::HOOK_CALLS_MAX)
                }
                mpsc::error::TrySendError::Closed(_) => "the hook thread stopped".into(),
            })
        })
    }
}

fn no_answer(timeout: Duration) -> String {
    format!("no answer within {} ms", timeout.as_millis())
}

/// The hook thread: takes calls off the queue, at most
/// [`limits::HOOK_CALLS_MAX`] in flight.
async fn serve(mut queue: mpsc::Receiver<Call>) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let in_flight = Arc::new(Semaphore::new(limits::HOOK_CALLS_MAX));
    let failures = Arc::new(Mutex::new(FailureLog::default()));
    while let Some(call) = queue.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let client = client.clone();
        let failures = failures.clone();
        tokio::spawn(async move {
            let url = call.url.clone();
            let outcome = tokio::time::timeout(call.timeout, send(&client, call.url, call.body))
                .await
                .unwrap_or_else(|_| Outcome::Failed(no_answer(call.timeout)));
            match call.answer {
                Some(answer) => {
                    let _ = answer.send(outcome);
                }
                None => {
                    let mut failures = failures.lock().unwrap_or_else(PoisonError::into_inner);
                    let why = match outcome {
                        Outcome::Allowed | Outcome::Renamed(_) => {
                            let not_logged = failures.succeeded();
                            if not_logged > 0 {
                                info!(hook = %Redacted(&url), not_logged, "hook notifications succeed again");
                            }
                            None
                        }
                        Outcome::Refused(status) => Some(format!("answered {status}")),
                        Outcome::Failed(why) => Some(why),
                    };
                    if let Some(why) = why {
                        if let Some(not_logged) = failures.failed(Instant::now()) {
                            warn!(hook = %Redacted(&url), %why, not_logged, "hook notification failed (further failures counted)");
                        }
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Failed notifications, logged so that a dead hook service makes a few
/// lines, not one per notification: the first failure of a run is
/// written, then one every [`limits::HOOK_FAILURE_LOG_INTERVAL_MS`] with
/// the count of those not written, and a line when one succeeds again.
#[derive(Debug, Default)]
struct FailureLog {
    not_logged: u64,
    /// When a failure was last written; `None` while notifications work.
    logged_at: Option<Instant>,
}

impl FailureLog {
    /// A failure at `now`: the count of failures not written before it if
    /// this one is to be written, or `None`.
    fn failed(&mut self, now: Instant) -> Option<u64> {
        let interval = Duration::from_millis(limits::HOOK_FAILURE_LOG_INTERVAL_MS);
        match self.logged_at {
            Some(at) if now.saturating_duration_since(at) < interval => {
                self.not_logged += 1;
                None
            }
            _ => {
                self.logged_at = Some(now);
                Some(std::mem::take(&mut self.not_logged))
            }
        }
    }

    /// A notification went through: the failures not written since the
    /// last one that was.
    fn succeeded(&mut self) -> u64 {
        self.logged_at = None;
        std::mem::take(&mut self.not_logged)
    }
}

async fn send(client: &Client<HttpConnector, Full<Bytes>>, url: Uri, body: Bytes) -> Outcome {
    let request = Request::post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(USER_AGENT, concat!("ringcast/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(body));
    let request = match request {
        Ok(request) => request,
        Err(e) => return Outcome::Failed(format!("cannot build the request: {e}")),
    };
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(format!("request failed: {e}")),
    };
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    // Read the body (bounded) so the connection can serve the next call.
    let _ = Limited::new(response.into_body(), limits::HOOK_ANSWER_BYTES_MAX)
        .collect()
        .await;
    classify(status, location.as_deref())
}

/// The meaning of an answer.
fn classify(status: StatusCode, location: Option<&str>) -> Outcome {
    if status.is_success() {
        return Outcome::Allowed;
    }
    if status.is_redirection() {
        if let Some(name) = location.and_then(redirect_name) {
            return Outcome::Renamed(name);
        }
    }
    Outcome::Refused(status.as_u16())
}

/// The stream name a `Location` gives: its last path segment, without a
/// query (`rtmp://host/live/other?x=1`, `/live/other` and `other` all give
/// `other`).
fn redirect_name(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    let name = path.trim_end_matches('/').rsplit('/').next()?;
    let usable = !name.is_empty() && name.len() <= limits::NAME_BYTES_MAX;
    usable.then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_notifications_log_the_first_then_one_per_interval_with_a_count() {
        let interval = Duration::from_millis(limits::HOOK_FAILURE_LOG_INTERVAL_MS);
        let start = Instant::now();
        let mut log = FailureLog::default();
        assert_eq!(log.failed(start), Some(0), "the first is written");
        let written = (1..=1000)
            .filter_map(|i| log.failed(start + interval * i / 1001))
            .count();
        assert_eq!(written, 0, "the rest of the interval is counted");
        assert_eq!(log.failed(start + interval), Some(1000));
        assert_eq!(log.failed(start + interval), None);
        assert_eq!(log.succeeded(), 1, "recovery reports what was not written");
        assert_eq!(log.failed(start + interval), Some(0), "a new run starts");
        assert_eq!(log.succeeded(), 0);
    }

    #[test]
    fn answers_allow_rename_or_refuse() {
        assert_eq!(classify(StatusCode::OK, None), Outcome::Allowed);
        assert_eq!(classify(StatusCode::NO_CONTENT, None), Outcome::Allowed);
        assert_eq!(
            classify(StatusCode::FOUND, Some("rtmp://origin/live/backup?x=1")),
            Outcome::Renamed("backup".into())
        );
        assert_eq!(
            classify(StatusCode::SEE_OTHER, Some("/live/other/")),
            Outcome::Renamed("other".into())
        );
        assert_eq!(
            classify(StatusCode::FOUND, Some("plain")),
            Outcome::Renamed("plain".into())
        );
        assert_eq!(classify(StatusCode::FOUND, None), Outcome::Refused(302));
        assert_eq!(
            classify(StatusCode::FOUND, Some("/")),
            Outcome::Refused(302)
        );
        assert_eq!(classify(StatusCode::FORBIDDEN, None), Outcome::Refused(403));
        assert_eq!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, Some("x")),
            Outcome::Refused(500)
        );
    }

    #[test]
    fn events_serialize_like_srs_hooks() {
        let event = Event {
            action: "on_publish",
            client_id: "0-3".into(),
            client: "192.0.2.1:5000".parse().unwrap(),
            ip: "192.0.2.1".into(),
            app: "live",
            stream: Some("cam"),
            args: "key=x",
            tc_url: Some("rtmp://h/live"),
            protocol: "rtmp",
        };
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "action": "on_publish", "client_id": "0-3", "client": "192.0.2.1:5000",
                "ip": "192.0.2.1", "app": "live", "stream": "cam", "args": "key=x",
                "tcUrl": "rtmp://h/live", "protocol": "rtmp"
            })
        );
    }
}
