//! What a `/metrics` scrape costs the control thread with 10 000 streams,
//! and what `prometheus-client` would cost for the same exposition.
//!
//! - `scrape/collect`: the shards' stream reports (as `Query::Streams`
//!   answers them) merged by stream and cut to `metrics_streams_max`.
//! - `scrape/render/hand_built`: the text as `/metrics` writes it.
//! - `scrape/render/prometheus_client`: the same series (checked equal
//!   before timing) through `prometheus-client`'s Prometheus text encoder
//!   (0.0.4, which `promtool` reads), by its cheapest route: a `Collector`
//!   registered for the scrape, writing constant values from the same
//!   snapshot (no `Family` maps to fill).
//!
//! Each render at the default cap (100 streams with series of their own)
//! and at the largest (every one of the 10 000).
//!
//! `cargo bench --bench metrics`; the numbers are in README ("Admin API
//! and metrics").
// Benches fail by panicking on what they did not expect.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use ringcast::exec::ExecCounts;
use ringcast::http::metrics::process::Process;
use ringcast::http::metrics::streams::{OTHER, StreamSeries};
use ringcast::http::metrics::{self, Kind, SHARD_METRICS, STREAM_METRICS, Scrape};
use ringcast::limits;
use ringcast::media::{StreamInfo, StreamKey};
use ringcast::shard::ShardId;
use ringcast::shard::messages::{ClientId, Origin, SourceReport, StreamReport};
use ringcast::shard::stats::{Protocol, ShardSnapshot};

const STREAMS: usize = 10_000;
const SHARDS: usize = 8;

/// What the shards answer: stream `i` published on shard `i % SHARDS`,
/// with `i % 50` players there and `i % 13` on the next shard.
fn answers() -> Vec<(ShardId, Vec<StreamReport>)> {
    let mut answers: Vec<(ShardId, Vec<StreamReport>)> =
        (0..SHARDS).map(|s| (ShardId(s), Vec::new())).collect();
    for i in 0..STREAMS {
        let key = StreamKey::new("live", &format!("stream-{i:05}"));
        let (home, next) = (i % SHARDS, (i + 1) % SHARDS);
        let source = SourceReport {
            origin: Origin::Publisher {
                id: ClientId {
                    shard: ShardId(home),
                    serial: i as u64,
                },
                address: "10.0.0.1:5000".parse().unwrap(),
            },
            info: StreamInfo {
                bytes_in: 1_000_000 * i as u64,
                frames_in: 3_000 * i as u64,
                ..StreamInfo::default()
            },
            bitrate_bps: 4_000_000,
            gop_cache_bytes: 1 << 20,
            uptime_ms: 60_000,
            recording: false,
            pushes: 0,
        };
        answers[home].1.push(StreamReport {
            key: key.clone(),
            players: i % 50,
            source: Some(source),
        });
        answers[next].1.push(StreamReport {
            key,
            players: i % 13,
            source: None,
        });
    }
    answers
}

/// Everything one scrape shows, owned, so a collector can hold it.
#[derive(Debug)]
struct Snapshot {
    shards: Vec<ShardSnapshot>,
    streams: StreamSeries,
    process: Process,
}

impl Snapshot {
    fn new(streams_max: usize) -> Snapshot {
        let shards = (0..SHARDS as u64)
            .map(|s| ShardSnapshot {
                connections: 1000 + s,
                players: 900 + s,
                bytes_out: 1 << 40,
                ..ShardSnapshot::default()
            })
            .collect();
        Snapshot {
            shards,
            streams: StreamSeries::collect(answers(), streams_max),
            process: Process {
                cpu_seconds: 12_345.5,
                resident_bytes: 3 << 30,
                virtual_bytes: 40 << 30,
                open_fds: 50_000,
                max_fds: 1 << 20,
                start_time_s: 1_800_000_000.25,
            },
        }
    }

    fn hand_built(&self) -> String {
        metrics::render(&Scrape {
            version: "0.1.0",
            uptime_s: 3600.0,
            shards: &self.shards,
            streams: &self.streams,
            unanswered_shards: 0,
            hls: (0, 0),
            exec: ExecCounts::default(),
            process: Some(self.process),
        })
    }
}

/// The same exposition through `prometheus-client`.
#[derive(Debug)]
struct Exposition(Arc<Snapshot>);

fn prometheus_client(snapshot: &Arc<Snapshot>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition(snapshot.clone())));
    let mut out = String::with_capacity(1 << 20);
    prometheus_text::encode(&mut out, &registry).unwrap();
    out
}

/// prometheus-client adds `_total` to a counter's name itself.
fn base(name: &str, kind: Kind) -> (&str, MetricType) {
    match kind {
        Kind::Gauge => (name, MetricType::Gauge),
        Kind::Counter => (name.strip_suffix("_total").unwrap(), MetricType::Counter),
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let s = &*self.0;
        let mut info = encoder.encode_descriptor(
            "ringcast_build_info",
            "Version.",
            None,
            MetricType::Gauge,
        )?;
        info.encode_family(&[("version", "0.1.0")])?
            .encode_gauge(&1u64)?;
        let mut gauge = |name: &str, help: &str, value: f64| {
            let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            metric.encode_gauge(&value)
        };
        gauge("ringcast_uptime_seconds", "Uptime.", 3600.0)?;
        gauge("ringcast_shards", "Shards.", s.shards.len() as f64)?;
        let others = s.streams.other.map_or(0, |o| o.streams) as f64;
        gauge("ringcast_metrics_other_streams", "Past the cap.", others)?;
        gauge("ringcast_metrics_unanswered_shards", "Silent.", 0.0)?;
        gauge("ringcast_hls_streams", "HLS.", 0.0)?;
        gauge("ringcast_hls_window_bytes", "HLS.", 0.0)?;
        gauge("ringcast_exec_children", "Exec.", 0.0)?;
        for name in ["ringcast_exec_restarts", "ringcast_exec_refusals"] {
            let mut metric = encoder.encode_descriptor(name, "Exec.", None, MetricType::Counter)?;
            metric
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&0u64, None)?;
        }
        for &(name, kind, help, read) in SHARD_METRICS {
            let (name, kind) = base(name, kind);
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for (shard, snapshot) in s.shards.iter().enumerate() {
                let labels = [("shard", shard)];
                let family = metric.encode_family(&labels)?;
                write_value(family, kind, read(snapshot))?;
            }
        }
        for (name, kind, players) in [
            ("ringcast_protocol_players", MetricType::Gauge, true),
            ("ringcast_protocol_sent_bytes", MetricType::Counter, false),
        ] {
            let mut metric = encoder.encode_descriptor(name, "By protocol.", None, kind)?;
            for (shard, snapshot) in s.shards.iter().enumerate() {
                for (protocol, (p, sent)) in Protocol::ALL.iter().zip(snapshot.by_protocol()) {
                    let labels = ([("shard", shard)], [("protocol", protocol.name())]);
                    let family = metric.encode_family(&labels)?;
                    write_value(family, kind, if players { p } else { sent })?;
                }
            }
        }
        self.streams(&mut encoder)?;
        self.process(&mut encoder)
    }
}

impl Exposition {
    fn streams(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let streams = &self.0.streams;
        for &(name, kind, help, read, read_other) in STREAM_METRICS {
            let (name, kind) = base(name, kind);
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for (key, values) in &streams.top {
                if let Some(value) = read(values) {
                    let labels = [("app", key.app()), ("stream", key.name())];
                    write_value(metric.encode_family(&labels)?, kind, value)?;
                }
            }
            if let Some(other) = &streams.other {
                let labels = [("app", OTHER), ("stream", OTHER)];
                write_value(metric.encode_family(&labels)?, kind, read_other(other))?;
            }
        }
        let name = "ringcast_stream_source_info";
        let mut metric = encoder.encode_descriptor(name, "Source.", None, MetricType::Gauge)?;
        for (key, values) in &streams.top {
            if let Some(source) = values.source {
                let names = [("app", key.app()), ("stream", key.name())];
                let labels = (
                    names,
                    (
                        [("source", source.kind.name())],
                        [("shard", source.shard.0)],
                    ),
                );
                metric.encode_family(&labels)?.encode_gauge(&1u64)?;
            }
        }
        Ok(())
    }

    fn process(&self, encoder: &mut DescriptorEncoder) -> Result<(), fmt::Error> {
        let p = &self.0.process;
        let cpu = "process_cpu_seconds";
        let mut metric = encoder.encode_descriptor(cpu, "CPU.", None, MetricType::Counter)?;
        metric.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(
            &p.cpu_seconds,
            None,
        )?;
        for (name, value) in [
            ("process_resident_memory_bytes", p.resident_bytes as f64),
            ("process_virtual_memory_bytes", p.virtual_bytes as f64),
            ("process_open_fds", p.open_fds as f64),
            ("process_max_fds", p.max_fds as f64),
            ("process_start_time_seconds", p.start_time_s),
        ] {
            let mut metric =
                encoder.encode_descriptor(name, "Process.", None, MetricType::Gauge)?;
            metric.encode_gauge(&value)?;
        }
        Ok(())
    }
}

fn write_value(
    mut encoder: prometheus_client::encoding::MetricEncoder,
    kind: MetricType,
    value: u64,
) -> Result<(), fmt::Error> {
    match kind {
        MetricType::Counter => {
            encoder.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&value, None)
        }
        _ => encoder.encode_gauge(&value),
    }
}

/// Series → value, so two texts can be compared whatever their number
/// formatting and help.
fn series(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("scrape");
    for streams_max in [limits::METRICS_STREAMS_DEFAULT, limits::METRICS_STREAMS_MAX] {
        group.bench_function(
            format!("collect/{STREAMS}_streams/top_{streams_max}"),
            |b| {
                b.iter_batched(
                    answers,
                    |answers| StreamSeries::collect(answers, streams_max),
                    BatchSize::LargeInput,
                );
            },
        );
        let snapshot = Arc::new(Snapshot::new(streams_max));
        let (ours, theirs) = (snapshot.hand_built(), prometheus_client(&snapshot));
        assert_eq!(series(&ours), series(&theirs), "the same series");
        eprintln!(
            "top {streams_max}: {} bytes hand-built, {} through prometheus-client",
            ours.len(),
            theirs.len()
        );
        group.bench_function(format!("render/hand_built/top_{streams_max}"), |b| {
            b.iter(|| snapshot.hand_built());
        });
        group.bench_function(format!("render/prometheus_client/top_{streams_max}"), |b| {
            b.iter(|| prometheus_client(&snapshot));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
