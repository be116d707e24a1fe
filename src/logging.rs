//! Where log lines go and how they look: stderr (stdout stays free for
//! what a command prints), as text (`log_format = "text"`, for people,
//! files and journald) or one JSON object per line (`"json"`, for log
//! shippers), filtered by `RUST_LOG` (default: info).
//!
//! Owns the subscriber the binary installs once at startup, and the token
//! bucket of log lines ([`LogBucket`]) that budgets are made of, for
//! whatever thread keeps one. Must not decide which lines a peer may
//! cause (that is [`crate::shard::logs`], whatever subscriber runs) nor
//! block a shard on a slow stderr.
//!
//! Lines are formatted where they are logged and queued to a writer
//! thread (at most [`limits::LOG_QUEUE_LINES_MAX`]; past that lines are
//! dropped, never waited for), so a busy journald or a full pipe cannot
//! stall a shard. Colour only for a person at a terminal who did not opt
//! out (<https://no-color.org>); files, pipes and journald get none.
//!
//! Why field values are escaped: a value logged with `%` (a stream name,
//! an app, a reason quoting a request) is peer text written as it is, and
//! tracing-subscriber's text format escapes only the message, so a
//! publisher naming its stream `"\x1b[32m…"` wrote colour codes into
//! every log file, and a `"\n"` in a name could forge a line. Text lines
//! write every control character of a field value escaped (`\u{1b}`,
//! `\n`); JSON strings escape them anyway.

use std::fmt;
use std::io::IsTerminal;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{DefaultFields, DefaultVisitor, Writer};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::limits;

/// Installs the process's subscriber: `format` lines to stderr through a
/// writer thread. The guard flushes the queue when dropped; keep it until
/// the process ends.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(limits::LOG_QUEUE_LINES_MAX)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    tracing_subscriber::registry()
        .with(filter)
        .with(layer(format, colour(), writer))
        .init();
    guard
}

/// The formatting layer: `format` lines to `writer`, with colour codes
/// only if `colour` (text only).
fn layer<S, W>(format: LogFormat, colour: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => fmt
            .with_ansi(colour)
            .fmt_fields(EscapedFields::default())
            .boxed(),
        LogFormat::Json => fmt.with_ansi(false).json().boxed(),
    }
}

/// Colour codes only for a person at a terminal who did not opt out.
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// tracing-subscriber's text fields (`name=value`, names in italics on a
/// terminal) with every control character of a value escaped.
#[derive(Debug, Default)]
struct EscapedFields(DefaultFields);

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = Escaping<DefaultVisitor<'a>>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        Escaping(self.0.make_visitor(target))
    }
}

/// A visitor that hands `V` every value escaped. Values of the types
/// tracing records natively reach `record_debug` through `Visit`'s
/// defaults; strings and errors go to `V`, which quotes a string's control
/// characters (`Debug`) and escapes an error's ESC itself.
struct Escaping<V>(V);

impl<V: Visit> Visit for Escaping<V> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.record_debug(field, &Escaped(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record_str(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.record_error(field, value);
    }
}

impl<V: VisitOutput<fmt::Result>> VisitOutput<fmt::Result> for Escaping<V> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl<V: VisitFmt> VisitFmt for Escaping<V> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

/// A value formatted with its control characters escaped as Rust writes
/// them in literals (`\u{1b}`, `\n`, `\t`).
struct Escaped<'a>(&'a dyn fmt::Debug);

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        write!(EscapeControls(f), "{:?}", self.0)
    }
}

struct EscapeControls<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for EscapeControls<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // Each piece ends at a control character, or is the tail without one.
        for piece in text.split_inclusive(char::is_control) {
            let mut chars = piece.chars();
            match chars.next_back() {
                Some(control) if control.is_control() => {
                    self.0.write_str(chars.as_str())?;
                    write!(self.0, "{}", control.escape_default())?;
                }
                _ => self.0.write_str(piece)?,
            }
        }
        Ok(())
    }
}

/// A token bucket of log lines: `burst` lines at once, then one line every
/// `refill_ms`; the lines refused meanwhile are counted.
#[derive(Clone, Debug)]
pub struct LogBucket {
    burst: u32,
    refill_ms: u64,
    tokens: u32,
    /// When the last token was added (or the bucket was full).
    refilled_at_ms: u64,
    suppressed: u64,
}

impl LogBucket {
    /// A full bucket at `now_ms`.
    pub fn new(burst: u32, refill_ms: u64, now_ms: u64) -> LogBucket {
        debug_assert!(burst > 0 && refill_ms > 0);
        LogBucket {
            burst,
            refill_ms: refill_ms.max(1),
            tokens: burst,
            refilled_at_ms: now_ms,
            suppressed: 0,
        }
    }

    /// Takes a token for one line at `now_ms`: true if the line may be
    /// written; otherwise it is counted as suppressed.
    pub fn take(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        if self.tokens == 0 {
            self.suppressed = self.suppressed.saturating_add(1);
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// Whether a line would pass now, without taking a token.
    pub fn has_token(&mut self, now_ms: u64) -> bool {
        self.refill(now_ms);
        self.tokens > 0
    }

    /// Lines refused since the last call, for a summary line.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }

    /// Counts `lines` refused elsewhere against this bucket, so its
    /// summary has them too.
    pub fn count_suppressed(&mut self, lines: u64) {
        self.suppressed = self.suppressed.saturating_add(lines);
    }

    fn refill(&mut self, now_ms: u64) {
        if self.tokens >= self.burst {
            self.refilled_at_ms = now_ms;
            return;
        }
        let elapsed = now_ms.saturating_sub(self.refilled_at_ms);
        let earned = elapsed / self.refill_ms;
        if earned == 0 {
            return;
        }
        let room = u64::from(self.burst - self.tokens);
        // `earned.min(room)` fits in u32: room does.
        self.tokens += u32::try_from(earned.min(room)).unwrap_or(0);
        self.refilled_at_ms = if self.tokens >= self.burst {
            now_ms
        } else {
            self.refilled_at_ms + earned * self.refill_ms
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::{info, warn};

    use super::*;

    /// What a layer wrote, line by line.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;

        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    /// The lines `log` writes through [`layer`].
    fn lines(format: LogFormat, colour: bool, log: impl FnOnce()) -> Vec<String> {
        let captured = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(layer(format, colour, captured.clone()));
        tracing::subscriber::with_default(subscriber, log);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    const PEER_NAME: &str = "live/\u{1b}[32mcam\nINFO forged line";

    #[test]
    fn text_fields_escape_control_characters_a_peer_sent() {
        let lines = lines(LogFormat::Text, false, || {
            info!(peer = %"10.0.0.1:5000", stream = %PEER_NAME, n = 3, "publish");
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(
            line.ends_with(
                "publish peer=10.0.0.1:5000 stream=live/\\u{1b}[32mcam\\nINFO forged line n=3"
            ),
            "{line}"
        );
        assert!(line.contains(" INFO ringcast::logging::tests: "), "{line}");
    }

    #[test]
    fn text_on_a_terminal_keeps_its_own_colours_but_not_a_peer_s() {
        let lines = lines(LogFormat::Text, true, || {
            warn!(stream = %PEER_NAME, reason = ?"a\u{7}b", "denied");
        });
        let line = &lines[0];
        assert!(
            line.contains("\u{1b}[33m WARN\u{1b}[0m"),
            "coloured level: {line:?}"
        );
        assert!(!line.contains("\u{1b}[32mcam"), "{line:?}");
        assert!(line.contains("live/\\u{1b}[32mcam\\nINFO"), "{line:?}");
        assert!(line.contains("\"a\\u{7}b\""), "{line:?}");
    }

    #[test]
    fn json_lines_carry_level_target_message_and_fields() {
        let lines = lines(LogFormat::Json, true, || {
            info!(peer = %"10.0.0.1:5000", stream = %PEER_NAME, n = 3, "publish");
        });
        assert_eq!(lines.len(), 1, "one line per event: {lines:?}");
        assert!(!lines[0].contains('\u{1b}'), "no colour: {}", lines[0]);
        let json: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["target"], "ringcast::logging::tests");
        assert!(json["timestamp"].is_string(), "{json}");
        let fields = &json["fields"];
        assert_eq!(fields["message"], "publish");
        assert_eq!(fields["peer"], "10.0.0.1:5000");
        assert_eq!(fields["stream"], PEER_NAME, "the peer's text, intact");
        assert_eq!(fields["n"], 3);
    }

    #[test]
    fn a_bucket_passes_its_burst_then_one_line_per_refill() {
        let mut bucket = LogBucket::new(3, 100, 0);
        assert!((0..3).all(|_| bucket.take(0)));
        assert!(!bucket.take(0));
        assert!(!bucket.take(99));
        assert!(bucket.take(100), "one token after one refill period");
        assert!(!bucket.take(150));
        assert!(bucket.take(200));
        assert_eq!(bucket.take_suppressed(), 3);
        assert_eq!(bucket.take_suppressed(), 0, "the count starts again");
    }

    #[test]
    fn a_bucket_refills_to_its_burst_and_no_further() {
        let mut bucket = LogBucket::new(2, 10, 0);
        assert!(bucket.take(0) && bucket.take(0));
        // A long silence refills the burst, not more.
        let passed = (0..10).filter(|_| bucket.take(1_000_000)).count();
        assert_eq!(passed, 2);
        assert_eq!(bucket.take_suppressed(), 8);
    }

    #[test]
    fn partial_refill_periods_carry_over() {
        let mut bucket = LogBucket::new(1, 100, 0);
        assert!(bucket.take(0));
        assert!(!bucket.take(60));
        // 60 + 60 ms: one period has passed since the token was taken,
        // although neither gap alone was one.
        assert!(bucket.take(120));
        // The bucket was full again at 120, so the next period starts there.
        assert!(!bucket.take(200));
        assert!(bucket.take(220));
    }

    #[test]
    fn a_bucket_that_was_full_does_not_bank_idle_time() {
        let mut bucket = LogBucket::new(1, 100, 0);
        assert!(bucket.has_token(5_000));
        assert!(bucket.take(5_000));
        assert!(!bucket.take(5_050), "no token saved from the idle time");
    }
}
