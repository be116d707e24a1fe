//! What a bench run found: the summary table, the JSON document and the
//! latency/throughput plot.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::publisher::Outcome;
use super::stats::{Percentiles, Totals};
use super::{BenchConfig, Observed, procstat};

/// Everything one run measured; serialised as the `--json` document.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub url: String,
    pub config: Settings,
    /// Seconds from the first player's start to the end.
    pub elapsed_s: f64,
    pub players: Players,
    /// End-to-end latency of every stamped video frame sent after its
    /// player started playing (frames from the GOP cache are history).
    /// Named `latency`, not `video_latency`, as before audio was measured.
    pub latency: Percentiles,
    /// End-to-end latency of every audio frame sent after its player
    /// started playing, its send time inferred from the video stamps
    /// ([`super::stats`]).
    pub audio_latency: Percentiles,
    /// From a player starting to connect to its first coded video frame.
    pub time_to_first_frame: Percentiles,
    pub frames: Frames,
    pub bytes_received: u64,
    /// Average delivered rate over the run, all players together.
    pub egress_mbps: f64,
    /// HTTP requests players sent, all together: one per HTTP-FLV or
    /// WebSocket-FLV player; every playlist, init segment and part an HLS
    /// player fetched, retries included; none over RTMP.
    pub requests: u64,
    /// `requests` over the run's seconds: the request rate the server
    /// answered.
    pub requests_per_s: f64,
    pub publishers: Vec<Outcome>,
    pub server: Option<Server>,
    pub timeline: Vec<Timeline>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub players: usize,
    pub publishers: usize,
    pub duration_s: f64,
    pub ramp_s: f64,
    pub churn_per_s: f64,
    pub bitrate_kbps: u32,
    pub fps: f64,
    pub gop_s: f64,
    pub audio_rate: u32,
    pub threads: usize,
    pub flv: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Players {
    /// Every player that ran, churned ones included.
    pub total: u64,
    /// Received frames, lost none, and were not disconnected.
    pub complete: u64,
    /// Received a sequence header, then a keyframe as their first frame.
    pub started_on_keyframe: u64,
    /// Never received a video frame.
    pub never_played: u64,
    /// Players disconnected before the end, by reason.
    pub disconnects: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Frames {
    /// Video frames received, all players together.
    pub received: u64,
    /// Video frames a publisher sent that players did not receive.
    pub lost: u64,
    /// Waits longer than two frame intervals between video frames.
    pub stalls: u64,
    pub stall_s: f64,
}

/// The server process, seen from outside during the run.
#[derive(Clone, Debug, Serialize)]
pub struct Server {
    pub pid: u32,
    /// CPU seconds of all its threads while players were running.
    pub cpu_s: f64,
    pub cpu_s_per_gb: Option<f64>,
    /// Highest resident memory seen during the run.
    pub peak_rss_bytes: u64,
}

/// One second of the run.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    pub t_s: f64,
    pub players: u64,
    pub mbps: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
}

impl Timeline {
    pub fn new(
        players_start: Instant,
        players: u64,
        bytes: u64,
        latency: &Histogram<u64>,
    ) -> Timeline {
        let p = Percentiles::of(latency);
        let now = Instant::now();
        let t_s = if now >= players_start {
            (now - players_start).as_secs_f64()
        } else {
            -(players_start - now).as_secs_f64()
        };
        Timeline {
            t_s,
            players,
            mbps: bytes as f64 * 8.0 / 1e6,
            latency_p50_ms: p.p50_ms,
            latency_p99_ms: p.p99_ms,
        }
    }

    pub fn progress_line(&self) -> String {
        format!(
            "{:6.1}s  {:6} players  {:9.1} Mbit/s  latency p99 {:8.1} ms",
            self.t_s, self.players, self.mbps, self.latency_p99_ms
        )
    }
}

/// `amount` over `elapsed_s` seconds; 0 for a run of no time.
fn per_s(amount: f64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        amount / elapsed_s
    } else {
        0.0
    }
}

/// Samples a server process once a second.
pub struct ServerWatch {
    pid: u32,
    first: Option<procstat::Sample>,
    last: Option<procstat::Sample>,
    peak_rss_bytes: u64,
}

impl ServerWatch {
    pub fn new(pid: u32) -> ServerWatch {
        ServerWatch {
            pid,
            first: None,
            last: None,
            peak_rss_bytes: 0,
        }
    }

    /// Takes a reading; CPU is counted from the first reading while
    /// players run.
    pub fn sample(&mut self, players_running: bool) {
        let Some(now) = procstat::sample(self.pid) else {
            return;
        };
        self.peak_rss_bytes = self.peak_rss_bytes.max(now.rss_bytes);
        if players_running {
            self.first.get_or_insert(now);
            self.last = Some(now);
        }
    }

    pub fn finish(self) -> Server {
        let cpu = match (self.first, self.last) {
            (Some(first), Some(last)) => last.cpu.saturating_sub(first.cpu),
            _ => Duration::ZERO,
        };
        Server {
            pid: self.pid,
            cpu_s: cpu.as_secs_f64(),
            cpu_s_per_gb: None,
            peak_rss_bytes: self.peak_rss_bytes,
        }
    }
}

impl Report {
    pub(super) fn new(
        config: &BenchConfig,
        totals: &Totals,
        publishers: Vec<Outcome>,
        observed: Observed,
    ) -> Report {
        let elapsed_s = observed.elapsed.as_secs_f64();
        let mut server = observed.server;
        if let Some(server) = &mut server {
            // Bytes delivered while CPU was counted: the whole run.
            let gb = totals.bytes as f64 / 1e9;
            server.cpu_s_per_gb = (gb > 0.0).then(|| server.cpu_s / gb);
        }
        Report {
            url: config.url.clone(),
            config: Settings {
                players: config.players,
                publishers: config.publishers,
                duration_s: config.duration.as_secs_f64(),
                ramp_s: config.ramp.as_secs_f64(),
                churn_per_s: config.churn_per_s,
                bitrate_kbps: config.shape.bitrate_kbps,
                fps: config.shape.fps,
                gop_s: config.shape.gop_s,
                audio_rate: config.shape.audio_rate,
                threads: config.threads,
                flv: config.flv.as_ref().map(|p| p.display().to_string()),
            },
            elapsed_s,
            players: Players {
                total: totals.players,
                complete: totals.complete,
                started_on_keyframe: totals.started_on_keyframe,
                never_played: totals.never_played,
                disconnects: totals.disconnects.clone(),
            },
            latency: Percentiles::of(&totals.latency_us),
            audio_latency: Percentiles::of(&totals.audio_latency_us),
            time_to_first_frame: Percentiles::of(&totals.ttff_us),
            frames: Frames {
                received: totals.frames,
                lost: totals.gaps,
                stalls: totals.stalls,
                stall_s: totals.stall_time.as_secs_f64(),
            },
            bytes_received: totals.bytes,
            egress_mbps: per_s(totals.bytes as f64 * 8.0 / 1e6, elapsed_s),
            requests: totals.requests,
            requests_per_s: per_s(totals.requests as f64, elapsed_s),
            publishers,
            server,
            timeline: observed.timeline,
        }
    }

    /// The summary a person reads.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let p = &self.players;
        out += &format!("ringcast bench: {} for {:.0} s\n", self.url, self.elapsed_s);
        out += &format!(
            "players      {} ran, {} got every frame, {} started on a keyframe, {} never played\n",
            p.total, p.complete, p.started_on_keyframe, p.never_played
        );
        for (reason, n) in &p.disconnects {
            out += &format!("             {n} disconnected: {reason}\n");
        }
        let f = &self.frames;
        out += &format!(
            "frames       {} received, {} lost, {} stalls ({:.1} s)\n",
            f.received, f.lost, f.stalls, f.stall_s
        );
        out += &format!(
            "egress       {:.1} Mbit/s ({} bytes)\n",
            self.egress_mbps, self.bytes_received
        );
        if self.requests > 0 {
            out += &format!(
                "requests     {} ({:.1}/s)\n",
                self.requests, self.requests_per_s
            );
        }
        out += "              count      p50      p90      p99    p99.9      max (ms)\n";
        for (name, q) in [
            ("video latency", &self.latency),
            ("audio latency", &self.audio_latency),
            ("first frame", &self.time_to_first_frame),
        ] {
            out += &format!(
                "{name:<13} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}\n",
                q.count, q.p50_ms, q.p90_ms, q.p99_ms, q.p999_ms, q.max_ms
            );
        }
        for publisher in &self.publishers {
            let moves = match (publisher.moves, publisher.moves_failed) {
                (0, 0) => String::new(),
                (moved, failed) => format!(", moved when asked {moved}, could not {failed}"),
            };
            out += &format!(
                "publisher    {}: {} messages, {} bytes{moves}{}\n",
                publisher.stream,
                publisher.frames,
                publisher.bytes,
                publisher
                    .error
                    .as_deref()
                    .map(|e| format!(", stopped: {e}"))
                    .unwrap_or_default()
            );
        }
        if let Some(s) = &self.server {
            out += &format!(
                "server       pid {}: {:.2} CPU s, {} CPU s/GB, peak RSS {:.1} MiB\n",
                s.pid,
                s.cpu_s,
                s.cpu_s_per_gb.map_or("n/a".into(), |v| format!("{v:.3}")),
                s.peak_rss_bytes as f64 / (1024.0 * 1024.0)
            );
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// Latency percentiles and throughput over time, as an SVG.
    pub fn write_plot(&self, path: &Path) -> Result<(), String> {
        use plotters::prelude::*;

        let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(300);
        let t_max = self.timeline.last().map_or(1.0, |t| t.t_s.max(1.0));
        let latency_max = self
            .timeline
            .iter()
            .map(|t| t.latency_p99_ms)
            .fold(1.0, f64::max)
            * 1.1;
        let mbps_max = self.timeline.iter().map(|t| t.mbps).fold(1.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .caption("latency (ms)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..t_max, 0.0..latency_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("s")
            .draw()
            .map_err(|e| e.to_string())?;
        let series = |f: fn(&Timeline) -> f64| self.timeline.iter().map(move |t| (t.t_s, f(t)));
        chart
            .draw_series(LineSeries::new(series(|t| t.latency_p50_ms), &BLUE))
            .map_err(|e| e.to_string())?
            .label("p50")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(series(|t| t.latency_p99_ms), &RED))
            .map_err(|e| e.to_string())?
            .label("p99")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&bottom)
            .caption("egress (Mbit/s)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..t_max, 0.0..mbps_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("s")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(series(|t| t.mbps), &GREEN))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }
}
