//! The tables on stdout and the JSON file.

use crate::RoundResult;

impl RoundResult {
    fn delivered_frames(&self) -> f64 {
        (self.frames_published * self.players as u64) as f64
    }

    fn shard_seconds(&self) -> f64 {
        self.shard.on_cpu.as_secs_f64().max(1e-9)
    }

    fn wall_seconds(&self) -> f64 {
        self.wall.as_secs_f64().max(1e-9)
    }

    pub fn shard_seconds_per_gb(&self) -> f64 {
        self.shard_seconds() / (self.bytes_delivered as f64 / 1e9).max(1e-9)
    }

    fn frames_published_per_wall_second(&self) -> f64 {
        self.frames_published as f64 / self.wall_seconds()
    }

    fn frames_delivered_per_shard_second(&self) -> f64 {
        self.delivered_frames() / self.shard_seconds()
    }

    /// `x` per published frame.
    fn per_published(&self, x: f64) -> f64 {
        x / self.frames_published as f64
    }

    /// Every player got exactly the packaged bytes, nothing dropped.
    fn complete(&self) -> bool {
        self.bytes_delivered == self.bytes_expected
            && self.server.frames_dropped == 0
            && self.server.slow_disconnects == 0
    }

    fn iovec_arrays(&self) -> u64 {
        let shapes = self.shapes.iter().filter(|s| s.is_iovec_array());
        shapes.map(|s| s.count).sum()
    }

    fn pacing(&self) -> String {
        match self.window_bytes {
            0 => "lockstep".into(),
            bytes => format!("{} KiB", bytes / 1024),
        }
    }
}

/// The throughput table's columns: two header lines and a width.
const COLUMNS: [(&str, &str, usize); 16] = [
    ("pacing", "", 9),
    ("N", "", 5),
    ("frames", "publ.", 7),
    ("frames/s", "publ.", 9),
    ("delivered", "MB", 9),
    ("wall", "s", 6),
    ("shard", "CPU s", 6),
    ("shard", "util", 5),
    ("user", "space", 5),
    ("players", "util", 7),
    ("delivered", "fr/CPU s", 10),
    ("delivered", "fr/wall s", 10),
    ("MB/s", "/CPU s", 7),
    ("CPU s", "/GB", 7),
    ("CPU s/GB", "all rounds", 11),
    ("check", "", 5),
];
/// Columns with a `|` before them.
const BARS: [usize; 2] = [10, 15];

fn row(cells: &[String]) {
    let mut line = String::new();
    for (i, (cell, (_, _, width))) in cells.iter().zip(COLUMNS).enumerate() {
        if BARS.contains(&i) {
            line.push_str(" |");
        }
        line.push_str(&format!(" {cell:>width$}"));
    }
    println!("{line}");
}

/// `min–max` of sorted figures (one figure: itself).
fn range(sorted: &[f64]) -> String {
    match (sorted.first(), sorted.last()) {
        (Some(min), Some(max)) if sorted.len() > 1 => format!("{min:.2}–{max:.2}"),
        (Some(only), _) => format!("{only:.3}"),
        _ => String::new(),
    }
}

pub fn table(results: &[RoundResult]) {
    println!("\nfan-out on one shard; a frame is one media message (10 KB video or 300 B audio)");
    row(&COLUMNS.map(|(top, _, _)| top.to_owned()));
    row(&COLUMNS.map(|(_, bottom, _)| bottom.to_owned()));
    for r in results {
        let user = r.shard.user_share();
        row(&[
            r.pacing(),
            r.players.to_string(),
            r.frames_published.to_string(),
            format!("{:.0}", r.frames_published_per_wall_second()),
            format!("{:.0}", r.bytes_delivered as f64 / 1e6),
            format!("{:.2}", r.wall_seconds()),
            format!("{:.3}", r.shard_seconds()),
            format!("{:.0}%", 100.0 * r.shard_seconds() / r.wall_seconds()),
            user.map_or("n/a".into(), |u| format!("{:.0}%", 100.0 * u)),
            format!(
                "{:.0}%",
                100.0 * r.players_cpu.as_secs_f64() / r.wall_seconds()
            ),
            format!("{:.0}", r.frames_delivered_per_shard_second()),
            format!("{:.0}", r.delivered_frames() / r.wall_seconds()),
            format!("{:.0}", r.bytes_delivered as f64 / 1e6 / r.shard_seconds()),
            format!("{:.3}", r.shard_seconds_per_gb()),
            range(&r.repeats_s_per_gb),
            if r.complete() { "ok" } else { "INCOMPLETE" }.into(),
        ]);
    }
    allocations(results);
    marginal(results);
    for r in results.iter().filter(|r| !r.complete()) {
        println!(
            "{} N = {}: delivered {} of {} bytes; the shard dropped {} frames and disconnected {} players",
            r.pacing(),
            r.players,
            r.bytes_delivered,
            r.bytes_expected,
            r.server.frames_dropped,
            r.server.slow_disconnects
        );
    }
}

/// Allocations on the shard, split into `writev` iovec arrays (per
/// write) and the rest (per published frame), and writes.
fn allocations(results: &[RoundResult]) {
    println!("\nallocations, heap and ring submissions (writes + reads) on the shard thread");
    println!(
        "{:>9} {:>5} {:>9} {:>9} {:>9} {:>9} {:>11} {:>12} {:>10}",
        "pacing",
        "N",
        "allocs",
        "allocs",
        "alloc B",
        "submiss.",
        "iovec arr.",
        "other allocs",
        "heap B"
    );
    println!(
        "{:>9} {:>5} {:>9} {:>9} {:>9} {:>9} {:>11} {:>12} {:>10}",
        "",
        "",
        "/publ fr",
        "/deliv fr",
        "/deliv fr",
        "/deliv fr",
        "/submission",
        "/publ fr",
        "/player"
    );
    for r in results {
        let delivered = r.delivered_frames();
        let iovecs = r.iovec_arrays();
        let (submissions, per_submission) = match r.submissions {
            Some(n) if n > 0 => (
                format!("{:.4}", n as f64 / delivered),
                format!("{:.3}", iovecs as f64 / n as f64),
            ),
            _ => ("n/a".into(), "n/a".into()),
        };
        println!(
            "{:>9} {:>5} {:>9.3} {:>9.5} {:>9.1} {:>9} {:>11} {:>12.3} {:>10.0}",
            r.pacing(),
            r.players,
            r.per_published(r.allocs.count as f64),
            r.allocs.count as f64 / delivered,
            r.allocs.bytes as f64 / delivered,
            submissions,
            per_submission,
            r.per_published((r.allocs.count - iovecs) as f64),
            r.heap_per_player,
        );
    }
}

/// What one more player costs: the difference between consecutive
/// rounds at the same pacing, per added delivered frame.
fn marginal(results: &[RoundResult]) {
    println!("\nmarginal cost of one more player per frame (between consecutive N, same pacing)");
    println!(
        "{:>9} {:>11} {:>12} {:>12} {:>12}",
        "pacing", "N", "shard CPU ns", "allocs", "submissions"
    );
    for pair in results.windows(2) {
        let [a, b] = pair else { continue };
        if a.window_bytes != b.window_bytes || b.players <= a.players {
            continue;
        }
        let added = (b.players - a.players) as f64;
        let marginal = |xa: f64, xb: f64| (b.per_published(xb) - a.per_published(xa)) / added;
        let submissions = match (a.submissions, b.submissions) {
            (Some(sa), Some(sb)) => format!("{:.4}", marginal(sa as f64, sb as f64)),
            _ => "n/a".into(),
        };
        println!(
            "{:>9} {:>11} {:>12.0} {:>12.5} {:>12}",
            a.pacing(),
            format!("{}→{}", a.players, b.players),
            marginal(a.shard_seconds(), b.shard_seconds()) * 1e9,
            marginal(a.allocs.count as f64, b.allocs.count as f64),
            submissions,
        );
    }
}

/// The most frequent allocation shapes of each round.
pub fn shapes(results: &[RoundResult]) {
    for r in results {
        println!(
            "\n{} N = {}: allocations on the shard by shape (count, per published frame)",
            r.pacing(),
            r.players
        );
        for shape in r.shapes.iter().take(12) {
            println!(
                "  {:>7} {:>6} B align {:>2}: {:>9} {:>8.3}{}",
                shape.kind,
                shape.size,
                shape.align,
                shape.count,
                r.per_published(shape.count as f64),
                if shape.is_iovec_array() {
                    "  (iovec array?)"
                } else {
                    ""
                },
            );
        }
    }
}

pub fn json(results: &[RoundResult]) -> String {
    let rounds: Vec<String> = results.iter().map(json_round).collect();
    format!("[\n{}\n]\n", rounds.join(",\n"))
}

fn json_round(r: &RoundResult) -> String {
    let fields = [
        ("players", r.players.to_string()),
        ("window_bytes", r.window_bytes.to_string()),
        ("frames_published", r.frames_published.to_string()),
        (
            "frames_published_per_wall_s",
            format!("{:.1}", r.frames_published_per_wall_second()),
        ),
        ("frames_delivered", format!("{:.0}", r.delivered_frames())),
        ("bytes_delivered", r.bytes_delivered.to_string()),
        ("bytes_expected", r.bytes_expected.to_string()),
        ("complete", r.complete().to_string()),
        ("wall_s", format!("{:.6}", r.wall_seconds())),
        ("shard_cpu_s", format!("{:.6}", r.shard_seconds())),
        (
            "shard_user_share",
            r.shard
                .user_share()
                .map_or("null".into(), |u| format!("{u:.3}")),
        ),
        (
            "players_cpu_s",
            format!("{:.6}", r.players_cpu.as_secs_f64()),
        ),
        (
            "process_cpu_s",
            format!("{:.6}", r.process_cpu.as_secs_f64()),
        ),
        (
            "frames_delivered_per_shard_cpu_s",
            format!("{:.1}", r.frames_delivered_per_shard_second()),
        ),
        (
            "bytes_delivered_per_shard_cpu_s",
            format!("{:.1}", r.bytes_delivered as f64 / r.shard_seconds()),
        ),
        (
            "shard_cpu_s_per_gb",
            format!("{:.6}", r.shard_seconds_per_gb()),
        ),
        ("allocs", r.allocs.count.to_string()),
        ("alloc_bytes", r.allocs.bytes.to_string()),
        ("iovec_array_allocs", r.iovec_arrays().to_string()),
        ("heap_per_player_bytes", format!("{:.0}", r.heap_per_player)),
        (
            "ring_submissions",
            r.submissions.map_or("null".into(), |s| s.to_string()),
        ),
        ("server_frames_dropped", r.server.frames_dropped.to_string()),
        (
            "repeats_shard_cpu_s_per_gb",
            format!("{:?}", r.repeats_s_per_gb),
        ),
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    format!("  {{{}}}", body.join(", "))
}
