//! HTTP hooks: `on_connect`, `on_publish`, `on_play` ask an outside
//! service before a client goes ahead and `on_update` asks again while it
//! publishes or plays; `on_publish_done`, `on_play_done`, `on_done` and
//! `on_close` tell it afterwards. Each is a POST to every URL the hook
//! lists, worded in the app's `hook_format` and its answer read the same
//! way ([`super::formats`]); a question needs every URL's allow.
//! `on_record_done` is told of each completed recording file the same way
//! ([`RecordDone`]).
//!
//! No answer in time, or no connection, is a failure that the caller turns
//! into an allow or a deny (`access.hook_fail_open`).
//!
//! The calls run on a thread of their own with a small tokio runtime and a
//! pooled HTTP/1.1 client (hyper; rustls for `https://`, verified against
//! the public roots and `[tls] ca_file` as relays are): shards hand a call
//! over a bounded channel and await the answer without blocking their
//! reactor.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ringcast_tls::ClientTls;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::{info, warn};

use super::formats::{self, Body, ServerIds};
pub use super::formats::{Event, Kind, Outcome, RecordDone};
use crate::config::{Config, HookFormat, HookUrl, Redacted};
use crate::limits;

/// Where and how one event is told: its hook's URLs, the app's format,
/// the time an answer may take (queueing included), and what `https://`
/// URLs are verified against besides the public roots.
#[derive(Clone, Copy, Debug)]
pub struct Hook<'a> {
    pub urls: &'a [HookUrl],
    pub format: HookFormat,
    pub timeout: Duration,
    pub roots: Option<&'a ClientTls>,
}

impl<'a> Hook<'a> {
    /// The hook `app` has for `kind` in `config`; no URLs: none.
    pub fn of(config: &'a Config, app: &str, kind: Kind) -> Hook<'a> {
        let policy = config.access.policy(app);
        let hooks = &policy.hooks;
        let urls = match kind {
            Kind::Connect => &hooks.on_connect,
            Kind::Publish => &hooks.on_publish,
            Kind::Play => &hooks.on_play,
            Kind::PublishDone => &hooks.on_publish_done,
            Kind::PlayDone => &hooks.on_play_done,
            Kind::Done { .. } => &hooks.on_done,
            Kind::Update { .. } => &hooks.on_update,
            Kind::Close { .. } => &hooks.on_close,
        };
        Hook {
            urls,
            format: policy.hook_format,
            timeout: config.access.hook_timeout,
            roots: config.tls.relay_ca.as_ref(),
        }
    }

    /// The `on_record_done` hook `app` has in `config`.
    pub fn record_done(config: &'a Config, app: &str) -> Hook<'a> {
        let policy = config.access.policy(app);
        Hook {
            urls: &policy.hooks.on_record_done,
            format: policy.hook_format,
            timeout: config.access.hook_timeout,
            roots: config.tls.relay_ca.as_ref(),
        }
    }

    /// This hook, held past its configuration's life (a recording's, on
    /// the recorder thread).
    pub fn to_owned(self) -> OwnedHook {
        OwnedHook {
            urls: self.urls.to_vec(),
            format: self.format,
            timeout: self.timeout,
            roots: self.roots.cloned(),
        }
    }
}

/// A [`Hook`] that owns what it names.
#[derive(Clone, Debug)]
pub struct OwnedHook {
    pub urls: Vec<HookUrl>,
    pub format: HookFormat,
    pub timeout: Duration,
    pub roots: Option<ClientTls>,
}

impl OwnedHook {
    pub fn hook(&self) -> Hook<'_> {
        Hook {
            urls: &self.urls,
            format: self.format,
            timeout: self.timeout,
            roots: self.roots.as_ref(),
        }
    }
}

/// The handle shards call hooks through; cloned into each shard.
#[derive(Clone, Debug)]
pub struct Hooks {
    calls: mpsc::Sender<Call>,
    ids: Arc<ServerIds>,
}

#[derive(Debug)]
struct Call {
    url: Uri,
    body: Body,
    format: HookFormat,
    timeout: Duration,
    /// The private CA `https://` URLs trust besides the public roots.
    roots: Option<ClientTls>,
    /// `None` for a notification: failures are logged by the hook thread.
    answer: Option<oneshot::Sender<Outcome>>,
}

impl Hooks {
    /// Starts the hook thread; it ends when every handle is dropped.
    pub fn start() -> io::Result<(Hooks, JoinHandle<()>)> {
        let (calls, queue) = mpsc::channel(limits::HOOK_CALLS_MAX);
        let public_roots = ClientTls::load(None).map_err(|e| io::Error::other(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("hooks".into())
            .spawn(move || runtime.block_on(serve(queue, public_roots)))?;
        let ids = Arc::new(server_ids());
        Ok((Hooks { calls, ids }, thread))
    }

    /// Asks every URL of `hook` about `event` at once, waiting at most
    /// `hook.timeout` for them all: an outcome per URL, in their order.
    pub async fn ask(&self, hook: Hook<'_>, event: &Event<'_>) -> Vec<Outcome> {
        let deadline = tokio::time::Instant::now() + hook.timeout;
        let body = formats::encode(hook.format, event, &self.ids);
        let waiting: Vec<_> = (hook.urls.iter())
            .map(|url| {
                let (answer, answered) = oneshot::channel();
                self.submit(url, &hook, body.clone(), Some(answer))
                    .map(|()| answered)
            })
            .collect();
        let mut outcomes = Vec::with_capacity(waiting.len());
        for answered in waiting {
            outcomes.push(match answered {
                Err(failure) => failure,
                Ok(answered) => match tokio::time::timeout_at(deadline, answered).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_)) => Outcome::Failed("the hook thread stopped".into()),
                    Err(_) => Outcome::Failed(no_answer(hook.timeout)),
                },
            });
        }
        outcomes
    }

    /// Tells every URL of `hook` about `event` without waiting. The URLs
    /// whose call cannot be queued are returned with why, for the caller
    /// to log within its budget; a call that fails later is logged by the
    /// hook thread, once per outage and interval, not once per call.
    pub fn tell<'h>(&self, hook: Hook<'h>, event: &Event<'_>) -> Vec<(&'h HookUrl, String)> {
        let body = formats::encode(hook.format, event, &self.ids);
        self.tell_all(hook, &body)
    }

    /// Tells every URL of `hook` (an app's `on_record_done`) that a
    /// recording file is complete, as [`Hooks::tell`] does.
    pub fn tell_record_done<'h>(
        &self,
        hook: Hook<'h>,
        done: &RecordDone<'_>,
    ) -> Vec<(&'h HookUrl, String)> {
        let body = formats::encode_record_done(hook.format, done, &self.ids);
        self.tell_all(hook, &body)
    }

    fn tell_all<'h>(&self, hook: Hook<'h>, body: &Body) -> Vec<(&'h HookUrl, String)> {
        (hook.urls.iter())
            .filter_map(|url| match self.submit(url, &hook, body.clone(), None) {
                Ok(()) => None,
                Err(Outcome::Failed(why)) => Some((url, why)),
                Err(_) => Some((url, "the call was not queued".into())),
            })
            .collect()
    }

    fn submit(
        &self,
        url: &HookUrl,
        hook: &Hook<'_>,
        body: Body,
        answer: Option<oneshot::Sender<Outcome>>,
    ) -> Result<(), Outcome> {
        let call = Call {
            url: url.uri().clone(),
            body,
            format: hook.format,
            timeout: hook.timeout,
            roots: hook.roots.cloned(),
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

/// SRS's `server_id` and `service_id`: the machine's name, and this run
/// (process id and start time), so a hook service tells restarts apart.
fn server_ids() -> ServerIds {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    ServerIds {
        server_id: if host.is_empty() { "ringcast" } else { host }.to_owned(),
        service_id: format!("{:x}-{started:x}", std::process::id()),
        cwd: std::env::current_dir()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default(),
    }
}

fn no_answer(timeout: Duration) -> String {
    format!("no answer within {} ms", timeout.as_millis())
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The pooled client and the roots its `https://` connections verify
/// against: rebuilt (its pool dropped) when a reload changes
/// `[tls] ca_file`, which is rare.
struct Clients {
    public_roots: ClientTls,
    ca: Option<ClientTls>,
    client: HttpClient,
}

impl Clients {
    fn new(public_roots: ClientTls) -> Clients {
        let client = http_client(&public_roots);
        Clients {
            public_roots,
            ca: None,
            client,
        }
    }

    /// The client for calls that trust `ca` besides the public roots.
    fn trusting(&mut self, ca: Option<ClientTls>) -> HttpClient {
        if ca != self.ca {
            self.client = http_client(ca.as_ref().unwrap_or(&self.public_roots));
            self.ca = ca;
        }
        self.client.clone()
    }
}

fn http_client(roots: &ClientTls) -> HttpClient {
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(roots.config().as_ref().clone())
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The hook thread: takes calls off the queue, at most
/// [`limits::HOOK_CALLS_MAX`] in flight.
async fn serve(mut queue: mpsc::Receiver<Call>, public_roots: ClientTls) {
    let mut clients = Clients::new(public_roots);
    let in_flight = Arc::new(Semaphore::new(limits::HOOK_CALLS_MAX));
    let failures = Arc::new(Mutex::new(FailureLog::default()));
    while let Some(call) = queue.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let client = clients.trusting(call.roots.clone());
        let failures = failures.clone();
        tokio::spawn(async move {
            let url = call.url.clone();
            let sent = send(&client, call.url, call.body, call.format);
            let outcome = tokio::time::timeout(call.timeout, sent)
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
                        Outcome::Refused(why) | Outcome::Failed(why) => Some(why),
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

async fn send(client: &HttpClient, url: Uri, body: Body, format: HookFormat) -> Outcome {
    let request = Request::post(url)
        .header(CONTENT_TYPE, body.content_type)
        .header(USER_AGENT, concat!("ringcast/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(body.bytes));
    let request = match request {
        Ok(request) => request,
        Err(e) => return Outcome::Failed(format!("cannot build the request: {e}")),
    };
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(format!("request failed: {}", error_chain(&e))),
    };
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    // Read the body (bounded) so the connection can serve the next call.
    let body = Limited::new(response.into_body(), limits::HOOK_ANSWER_BYTES_MAX)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes());
    formats::read_answer(format, status, location.as_deref(), body.as_deref())
}

/// An error and its causes (hyper's own says only "client error
/// (Connect)"; a certificate that failed is a cause of a cause).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
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
}
