//! The admin API's routes and JSON shapes. Field names are part of the API
//! (README documents them per endpoint): add fields, never rename.
//!
//! Counters come straight from the shards' snapshots; streams and clients
//! come from asking every shard (`ShardClient`), and each of those
//! answers lists the shards that did not answer in `unanswered_shards`
//! (their part is missing, the rest is right). One stream or one client
//! is answered whole or not at all: 503 when a shard it may be on did not
//! answer. `DELETE /api/v1/clients/{id}` is the client kick under SRS's
//! verb; a method a path does not take is a 405 with `Allow` and an
//! `{"error"}` body like every other refusal. `POST /api/v1/reload` is
//! SIGHUP over HTTP, `POST /api/v1/drain` SIGTERM. `POST
//! /api/v1/streams/{app}/{name}/record/start` and `/stop` ask the shard
//! with the stream's source to record it or not.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::metrics::process::Process;
use super::metrics::streams::StreamSeries;
use super::metrics::{self, Scrape};
use super::{AppState, VERSION};
use crate::limits;
use crate::media::{StreamKey, audio_codec_name, video_codec_name};
use crate::relay;
use crate::session::Quoted;
use crate::shard::ShardId;
use crate::shard::messages::{
    ClientId, ClientPage, ClientReport, Origin, Query as ShardQuery, Role, StreamReport,
};
use crate::shard::stats::ShardSnapshot;

/// Every route.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(prometheus))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/shards", get(shards))
        .route("/api/v1/streams", get(streams))
        .route("/api/v1/streams/{app}/{name}", get(stream))
        .route("/api/v1/streams/{app}/{name}/kick", post(kick_publisher))
        .route("/api/v1/streams/{app}/{name}/record/{action}", post(record))
        .route("/api/v1/clients", get(clients))
        .route("/api/v1/clients/{id}", get(client).delete(kick_client))
        .route("/api/v1/clients/{id}/kick", post(kick_client))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/drain", post(drain))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            super::guard::check,
        ))
        .with_state(state)
}

// ---------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct Summary {
    version: &'static str,
    uptime_s: f64,
    shards: usize,
    connections: u64,
    connections_max: usize,
    streams: u64,
    publishers: u64,
    players: u64,
    relay_pulls: u64,
    ingress_bps: u64,
    egress_bps: u64,
    bytes_in: u64,
    bytes_out: u64,
    /// A maintenance drain is under way.
    draining: bool,
}

#[derive(Debug, Serialize)]
struct ShardLoad {
    shard: usize,
    cpu: Option<usize>,
    streams: u64,
    ingress_bps: u64,
    egress_bps: u64,
    #[serde(flatten)]
    counters: ShardSnapshot,
}

/// One stream, merged from every shard's report.
#[derive(Debug, Default, PartialEq, Serialize)]
pub(crate) struct StreamJson {
    pub app: String,
    pub name: String,
    /// `"publisher"`, `"pull"`, or null while players wait for a source.
    pub source: Option<&'static str>,
    pub source_shard: Option<usize>,
    pub publisher_id: Option<String>,
    pub publisher_address: Option<String>,
    pub origin_url: Option<String>,
    /// A pull's state: `connecting`, `live`, `backoff`, `stopped`.
    pub relay_state: Option<&'static str>,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub bitrate_bps: u64,
    pub bytes_in: u64,
    pub frames_in: u64,
    pub gop_cache_bytes: usize,
    pub uptime_s: f64,
    pub pushes: usize,
    /// Recorded to files now.
    pub recording: bool,
    pub players: usize,
    pub players_per_shard: Vec<ShardPlayers>,
}

#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct ShardPlayers {
    pub shard: usize,
    pub players: usize,
}

#[derive(Debug, Serialize)]
struct ClientJson {
    id: String,
    shard: usize,
    address: String,
    protocol: &'static str,
    tls: bool,
    app: Option<String>,
    roles: Vec<RoleJson>,
    connected_s: f64,
    bytes_in: u64,
    bytes_out: u64,
    queued_bytes: usize,
}

#[derive(Debug, Serialize)]
struct RoleJson {
    role: &'static str,
    stream: String,
}

#[derive(Debug, Deserialize)]
struct ClientsParams {
    offset: Option<usize>,
    limit: Option<usize>,
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

/// Counters read directly; streams asked of every shard, as
/// `/api/v1/streams` asks; the process read from `/proc` off this task.
async fn prometheus(State(state): State<Arc<AppState>>) -> Response {
    let answers = state.shards.ask_all(ShardQuery::Streams).await;
    let streams_max = state.reloader.running().metrics_streams_max;
    let streams = StreamSeries::collect(answers.answered, streams_max);
    let process = match tokio::task::spawn_blocking(Process::read).await {
        Ok(Ok(process)) => Some(process),
        Ok(Err(err)) => {
            debug!(error = %err, "no process metrics: /proc unreadable");
            None
        }
        Err(_) => None,
    };
    let shards = state.snapshots();
    let text = metrics::render(&Scrape {
        version: VERSION,
        uptime_s: state.started.elapsed().as_secs_f64(),
        shards: &shards,
        streams: &streams,
        unanswered_shards: answers.unanswered.len(),
        hls: state.hls.usage(),
        exec: state.exec.counts(),
        process,
    });
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}

async fn summary(State(state): State<Arc<AppState>>) -> Json<Summary> {
    let total: ShardSnapshot = state.snapshots().into_iter().sum();
    let rates = state.rates_bps();
    Json(Summary {
        version: VERSION,
        uptime_s: state.started.elapsed().as_secs_f64(),
        shards: state.shards.shards(),
        connections: total.connections,
        connections_max: state.reloader.running().connections_max,
        streams: total.publishers.saturating_add(total.relay_pulls),
        publishers: total.publishers,
        players: total.players,
        relay_pulls: total.relay_pulls,
        ingress_bps: rates.iter().map(|r| r.0).sum(),
        egress_bps: rates.iter().map(|r| r.1).sum(),
        bytes_in: total.bytes_in,
        bytes_out: total.bytes_out,
        draining: total.draining > 0,
    })
}

async fn shards(State(state): State<Arc<AppState>>) -> Response {
    let rates = state.rates_bps();
    let loads: Vec<ShardLoad> = (state.snapshots().into_iter().enumerate())
        .map(|(shard, counters)| {
            let (ingress_bps, egress_bps) = rates.get(shard).copied().unwrap_or_default();
            ShardLoad {
                shard,
                cpu: state.shard_cpus.get(shard).copied().flatten(),
                streams: counters.publishers.saturating_add(counters.relay_pulls),
                ingress_bps,
                egress_bps,
                counters,
            }
        })
        .collect();
    Json(serde_json::json!({ "shards": loads })).into_response()
}

async fn streams(State(state): State<Arc<AppState>>) -> Response {
    let answers = state.shards.ask_all(ShardQuery::Streams).await;
    let streams = merge_streams(answers.answered);
    Json(serde_json::json!({
        "streams": streams,
        "unanswered_shards": shard_numbers(&answers.unanswered),
    }))
    .into_response()
}

/// One stream, as an element of `/api/v1/streams`; 404 if no shard holds
/// it, 503 if one that might did not answer.
async fn stream(
    State(state): State<Arc<AppState>>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    let key = StreamKey::new(&app, &name);
    let answers = (state.shards)
        .ask_all(|reply| ShardQuery::Stream {
            key: key.clone(),
            reply,
        })
        .await;
    if !answers.unanswered.is_empty() {
        return silent(&answers.unanswered);
    }
    let reports = (answers.answered.into_iter())
        .map(|(shard, report)| (shard, report.into_iter().collect()))
        .collect();
    match merge_streams(reports).pop() {
        Some(stream) => Json(stream).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no stream {key} on this server"),
        ),
    }
}

async fn clients(
    State(state): State<Arc<AppState>>,
    params: Result<Query<ClientsParams>, QueryRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let offset = params.offset.unwrap_or(0);
    let limit = (params.limit)
        .unwrap_or(limits::ADMIN_CLIENTS_PAGE_DEFAULT)
        .min(limits::ADMIN_CLIENTS_PAGE_MAX);
    // Shard by shard, so the page is cut where the offset says: each shard
    // skips what the ones before it did not cover.
    let (mut skip, mut left, mut total) = (offset, limit, 0);
    let mut page = Vec::new();
    let mut unanswered = Vec::new();
    let deadline = state.shards.deadline();
    for shard in (0..state.shards.shards()).map(ShardId) {
        let ask = |reply| ShardQuery::Clients {
            skip,
            limit: left,
            reply,
        };
        match state.shards.ask_before(deadline, shard, ask).await {
            Ok(ClientPage {
                total: here,
                clients,
            }) => {
                total += here;
                skip = skip.saturating_sub(here);
                left = left.saturating_sub(clients.len());
                page.extend(clients.into_iter().map(client_json));
            }
            Err(_) => unanswered.push(shard),
        }
    }
    Json(serde_json::json!({
        "total": total,
        "offset": offset,
        "limit": limit,
        "clients": page,
        "unanswered_shards": shard_numbers(&unanswered),
    }))
    .into_response()
}

/// One client, as an element of `/api/v1/clients`.
async fn client(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let id = match client_id(&state, &id) {
        Ok(id) => id,
        Err((status, message)) => return error(status, message),
    };
    let serial = id.serial;
    let ask = |reply| ShardQuery::Client { serial, reply };
    match state.shards.ask(id.shard, ask).await {
        Ok(Some(client)) => Json(client_json(client)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no client {id}")),
        Err(_) => silent(&[id.shard]),
    }
}

/// `POST /api/v1/clients/{id}/kick`, and `DELETE /api/v1/clients/{id}`.
async fn kick_client(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let id = match client_id(&state, &id) {
        Ok(id) => id,
        Err((status, message)) => return error(status, message),
    };
    let serial = id.serial;
    let ask = |reply| ShardQuery::KickClient { serial, reply };
    match state.shards.ask(id.shard, ask).await {
        Ok(true) => Json(serde_json::json!({ "kicked": id.to_string() })).into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no client {id}")),
        Err(_) => silent(&[id.shard]),
    }
}

async fn kick_publisher(
    State(state): State<Arc<AppState>>,
    Path((app, name)): Path<(String, String)>,
) -> Response {
    let key = StreamKey::new(&app, &name);
    let answers = (state.shards)
        .ask_all(|reply| ShardQuery::KickPublisher {
            key: key.clone(),
            reply,
        })
        .await;
    let kicked = answers.answered.into_iter().find_map(|(_, id)| id);
    match kicked {
        Some(id) => Json(serde_json::json!({
            "kicked": key.as_str(),
            "client": id.to_string(),
        }))
        .into_response(),
        None if !answers.unanswered.is_empty() => silent(&answers.unanswered),
        None => error(
            StatusCode::NOT_FOUND,
            format!("nobody publishes {key} on this server"),
        ),
    }
}

/// `POST /api/v1/streams/{app}/{name}/record/start` (or `/stop`): the
/// shard with the stream's source starts (or stops) recording it,
/// whatever its app's setting; a stop completes the current file. 404
/// when no shard has the stream's source (or for another action), 503
/// when one that might did not answer.
async fn record(
    State(state): State<Arc<AppState>>,
    Path((app, name, action)): Path<(String, String, String)>,
) -> Response {
    let start = match action.as_str() {
        "start" => true,
        "stop" => false,
        _ => {
            let action = Quoted(&action);
            return error(
                StatusCode::NOT_FOUND,
                format!("no record action {action}: it is start or stop"),
            );
        }
    };
    let key = StreamKey::new(&app, &name);
    let answers = (state.shards)
        .ask_all(|reply| ShardQuery::Record {
            key: key.clone(),
            start,
            reply,
        })
        .await;
    let recording = answers
        .answered
        .into_iter()
        .find_map(|(_, recording)| recording);
    match recording {
        Some(recording) => Json(serde_json::json!({
            "stream": key.as_str(),
            "recording": recording,
        }))
        .into_response(),
        None if !answers.unanswered.is_empty() => silent(&answers.unanswered),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no source of {key} on this server"),
        ),
    }
}

/// The client id in a path: 400 if it is not one, 404 if its shard does
/// not exist.
fn client_id(state: &AppState, text: &str) -> Result<ClientId, (StatusCode, String)> {
    let id =
        (text.parse::<ClientId>()).map_err(|err| (StatusCode::BAD_REQUEST, err.to_string()))?;
    if id.shard.0 >= state.shards.shards() {
        return Err((StatusCode::NOT_FOUND, format!("no client {id}")));
    }
    Ok(id)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such endpoint; see /api/v1/summary, /api/v1/streams, /api/v1/clients, \
         /api/v1/shards, /metrics"
            .into(),
    )
}

/// A path asked with a method it does not take; axum adds the `Allow`
/// header listing those it does.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let path = Quoted(uri.path());
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {path}; the Allow header lists what is"),
    )
}

/// Reads the configuration again, as SIGHUP does: 200 with the keys that
/// need a restart, or 400 naming what is wrong (nothing changed then).
async fn reload(State(state): State<Arc<AppState>>) -> Response {
    let reloader = state.reloader.clone();
    // Reading a file and checking limits: off the async thread.
    match tokio::task::spawn_blocking(move || reloader.reload()).await {
        Ok(Ok(report)) => Json(serde_json::json!({
            "reloaded": true,
            "restart_required": report.restart_required,
        }))
        .into_response(),
        Ok(Err(err)) => error(StatusCode::BAD_REQUEST, crate::config::error_report(&err)),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the reload failed".into(),
        ),
    }
}

/// Begins a maintenance drain, as SIGTERM does: 202 with the time it
/// waits, or 409 if one is already under way. Under `ringcast serve` the
/// process exits once it is over.
async fn drain(State(state): State<Arc<AppState>>) -> Response {
    let (drain, config) = (state.drain.clone(), state.reloader.running());
    let wait_ms = config.drain.wait.as_millis() as u64;
    // It waits (bounded) for every shard to say what it held.
    match tokio::task::spawn_blocking(move || drain.begin(&config.drain, "admin API")).await {
        Ok(true) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "draining": true, "drain_ms": wait_ms })),
        )
            .into_response(),
        Ok(false) => error(StatusCode::CONFLICT, "a drain is already under way".into()),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the drain failed to begin".into(),
        ),
    }
}

pub(super) fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// 503: the shards that could answer did not.
fn silent(shards: &[ShardId]) -> Response {
    let list: Vec<String> = shards.iter().map(ToString::to_string).collect();
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "shard {} did not answer within {} ms (stuck or shutting down)",
            list.join(", "),
            limits::ADMIN_SHARD_TIMEOUT_MS
        ),
    )
}

fn shard_numbers(shards: &[ShardId]) -> Vec<usize> {
    shards.iter().map(|s| s.0).collect()
}

// ---------------------------------------------------------------------------
// Shaping the shards' answers
// ---------------------------------------------------------------------------

/// One entry per stream: the source's details from its source shard,
/// players from every shard that has some, sorted by app and name.
pub(crate) fn merge_streams(answers: Vec<(ShardId, Vec<StreamReport>)>) -> Vec<StreamJson> {
    let mut merged: BTreeMap<StreamKey, StreamJson> = BTreeMap::new();
    for (shard, reports) in answers {
        for report in reports {
            let entry = merged.entry(report.key.clone()).or_insert_with(|| {
                let (app, name) = report.key.as_str().split_once('/').unwrap_or_default();
                StreamJson {
                    app: app.to_owned(),
                    name: name.to_owned(),
                    ..StreamJson::default()
                }
            });
            if report.players > 0 {
                entry.players += report.players;
                entry.players_per_shard.push(ShardPlayers {
                    shard: shard.0,
                    players: report.players,
                });
            }
            if let Some(source) = report.source {
                fill_source(entry, shard, source);
            }
        }
    }
    let mut streams: Vec<StreamJson> = merged.into_values().collect();
    for stream in &mut streams {
        stream.players_per_shard.sort_by_key(|p| p.shard);
    }
    streams
}

fn fill_source(
    entry: &mut StreamJson,
    shard: ShardId,
    source: crate::shard::messages::SourceReport,
) {
    entry.source_shard = Some(shard.0);
    match source.origin {
        Origin::Publisher { id, address } => {
            entry.source = Some("publisher");
            entry.publisher_id = Some(id.to_string());
            entry.publisher_address = Some(address.to_string());
        }
        Origin::Pull { url, state } => {
            entry.source = Some("pull");
            entry.origin_url = Some(url);
            entry.relay_state = Some(match state {
                relay::State::Connecting => "connecting",
                relay::State::Live => "live",
                relay::State::Backoff => "backoff",
                relay::State::Stopped => "stopped",
            });
        }
    }
    let info = source.info;
    entry.video_codec = info.video_codec.map(video_codec_name);
    entry.audio_codec = info.audio_codec.map(audio_codec_name);
    entry.width = info.width;
    entry.height = info.height;
    entry.fps = info.fps;
    entry.bitrate_bps = source.bitrate_bps;
    entry.bytes_in = info.bytes_in;
    entry.frames_in = info.frames_in;
    entry.gop_cache_bytes = source.gop_cache_bytes;
    entry.uptime_s = source.uptime_ms as f64 / 1000.0;
    entry.pushes = source.pushes;
    entry.recording = source.recording;
}

fn client_json(client: ClientReport) -> ClientJson {
    ClientJson {
        id: client.id.to_string(),
        shard: client.id.shard.0,
        address: client.address.to_string(),
        protocol: client.protocol,
        tls: client.tls,
        app: client.app,
        roles: client
            .roles
            .into_iter()
            .map(|role| match role {
                Role::Publisher(key) => RoleJson {
                    role: "publisher",
                    stream: key.to_string(),
                },
                Role::Player(key) => RoleJson {
                    role: "player",
                    stream: key.to_string(),
                },
            })
            .collect(),
        connected_s: client.connected_ms as f64 / 1000.0,
        bytes_in: client.bytes_in,
        bytes_out: client.bytes_out,
        queued_bytes: client.queued_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::StreamInfo;
    use crate::protocol::flv::{AudioCodec, VideoCodec};
    use crate::shard::messages::SourceReport;

    fn report(key: &str, players: usize, source: Option<SourceReport>) -> StreamReport {
        let (app, name) = key.split_once('/').unwrap();
        StreamReport {
            key: StreamKey::new(app, name),
            players,
            source,
        }
    }

    fn publisher() -> SourceReport {
        SourceReport {
            origin: Origin::Publisher {
                id: ClientId {
                    shard: ShardId(1),
                    serial: 4,
                },
                address: "10.0.0.1:5000".parse().unwrap(),
            },
            info: StreamInfo {
                video_codec: Some(VideoCodec::Avc),
                audio_codec: Some(AudioCodec::Aac),
                width: Some(1280),
                height: Some(720),
                fps: Some(30.0),
                bytes_in: 5000,
                frames_in: 40,
            },
            bitrate_bps: 40_000,
            gop_cache_bytes: 1234,
            uptime_ms: 2500,
            pushes: 0,
            recording: true,
        }
    }

    #[test]
    fn streams_merge_players_from_every_shard_with_the_source_s_details() {
        let answers = vec![
            (
                ShardId(0),
                vec![report("live/cam", 3, None), report("live/wait", 2, None)],
            ),
            (ShardId(1), vec![report("live/cam", 5, Some(publisher()))]),
            (ShardId(2), vec![report("live/cam", 0, None)]),
        ];
        let streams = merge_streams(answers);
        assert_eq!(streams.len(), 2);
        let cam = &streams[0];
        assert_eq!((cam.app.as_str(), cam.name.as_str()), ("live", "cam"));
        assert_eq!(cam.players, 8);
        assert_eq!(
            cam.players_per_shard,
            vec![
                ShardPlayers {
                    shard: 0,
                    players: 3
                },
                ShardPlayers {
                    shard: 1,
                    players: 5
                }
            ]
        );
        assert_eq!(cam.source, Some("publisher"));
        assert_eq!(cam.source_shard, Some(1));
        assert_eq!(cam.publisher_id.as_deref(), Some("1-4"));
        assert_eq!(cam.publisher_address.as_deref(), Some("10.0.0.1:5000"));
        assert_eq!(cam.video_codec.as_deref(), Some("h264"));
        assert_eq!(cam.audio_codec.as_deref(), Some("aac"));
        assert_eq!(
            (cam.width, cam.height, cam.fps),
            (Some(1280), Some(720), Some(30.0))
        );
        assert_eq!(
            (cam.bitrate_bps, cam.bytes_in, cam.frames_in),
            (40_000, 5000, 40)
        );
        assert_eq!(cam.gop_cache_bytes, 1234);
        assert_eq!(cam.uptime_s, 2.5);
        assert!(cam.recording);
        let wait = &streams[1];
        assert_eq!(wait.name, "wait");
        assert_eq!(wait.source, None);
        assert_eq!(wait.players, 2);
        let json = serde_json::to_value(wait).unwrap();
        assert!(json["publisher_id"].is_null());
        assert_eq!(json["players_per_shard"][0]["shard"], 0);
    }
}
