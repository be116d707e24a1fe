//! The budget of log lines a peer can make a shard write: a token bucket
//! per connection and one per shard, consulted before every line a peer
//! can cause (accept, connect, publish, play, denials, refused commands,
//! protocol errors, closes). What does not fit is counted, and the count
//! is written in one summary line: on the connection's close line
//! (`lines_suppressed=N`), or when the bucket has refilled and the next
//! line passes ("… and N more lines suppressed").
//!
//! Why in our own code and not in the subscriber: the cost of a line is
//! paid at the call site (formatting, the subscriber's lock, the write),
//! and a flood must be cut where it starts whatever subscriber runs (the
//! binary's non-blocking writer, a test's capture, an embedder's own).
//!
//! The bucket is [`LogBucket`], below every thread that keeps one; here
//! are the shard's, and the check of a line against both. Pure: the
//! shard's clock is passed in, so the tests below need no sleeps.

use tracing::info;

use super::Shard;
use super::connection::Conn;
use crate::limits;
use crate::logging::LogBucket;

/// The budgets of the shards' peers.
impl LogBucket {
    /// The bucket of one connection.
    pub fn per_connection(now_ms: u64) -> LogBucket {
        LogBucket::new(
            limits::LOG_LINES_PER_CONNECTION_BURST,
            limits::LOG_LINES_PER_CONNECTION_REFILL_MS,
            now_ms,
        )
    }

    /// The bucket of one shard, shared by all its connections.
    pub fn per_shard(now_ms: u64) -> LogBucket {
        LogBucket::new(
            limits::LOG_LINES_PER_SHARD_BURST,
            1000 / u64::from(limits::LOG_LINES_PER_SHARD_PER_S),
            now_ms,
        )
    }
}

/// What a budget check decided, with the summaries that are due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Admission {
    /// The line may be written.
    pub admitted: bool,
    /// Lines of this connection suppressed since its last summary, to
    /// report before the line (0: none).
    pub connection_suppressed: u64,
    /// Lines suppressed shard-wide since the shard's last summary.
    pub shard_suppressed: u64,
}

/// Checks one line against its connection's bucket, then its shard's. A
/// line the shard refuses still counts against the connection, and a line
/// that passes collects the summaries that are due.
pub fn admit(connection: &mut LogBucket, shard: &mut LogBucket, now_ms: u64) -> Admission {
    if !connection.take(now_ms) {
        return Admission::default();
    }
    if !shard.take(now_ms) {
        connection.count_suppressed(1);
        return Admission::default();
    }
    Admission {
        admitted: true,
        connection_suppressed: connection.take_suppressed(),
        shard_suppressed: shard.take_suppressed(),
    }
}

/// Writes one line a peer caused, if its connection's and its shard's
/// budgets allow: `peer_line!(INFO, shard, conn, fields…, "message")`.
/// The level is checked first, so a line filtered out costs no token.
macro_rules! peer_line {
    ($level:ident, $shard:expr, $conn:expr, $($line:tt)+) => {
        if ::tracing::enabled!(::tracing::Level::$level) && $shard.admit_line(&$conn) {
            ::tracing::event!(::tracing::Level::$level, $($line)+);
        }
    };
}
pub(crate) use peer_line;

impl Shard {
    /// Whether a line `conn` caused may be written now (see [`admit`]);
    /// writes the summaries that are due first.
    pub(crate) fn admit_line(&self, conn: &Conn) -> bool {
        let now = self.now_ms();
        let admission = admit(
            &mut conn.log_budget.borrow_mut(),
            &mut self.log_budget.borrow_mut(),
            now,
        );
        if admission.shard_suppressed > 0 {
            let n = admission.shard_suppressed;
            info!(shard = %self.id, suppressed = n, "… and {n} more lines on this shard suppressed (log rate limit)");
        }
        if admission.connection_suppressed > 0 {
            let n = admission.connection_suppressed;
            info!(shard = %self.id, peer = %conn.peer, suppressed = n, "… and {n} more lines for this peer suppressed (log rate limit)");
        }
        admission.admitted
    }

    /// Whether a line that the shard's budget alone governs may be
    /// written: a connection's close line (one per connection, so its own
    /// budget is not asked) or a refusal at accept (no connection yet).
    pub(crate) fn admit_shard_line(&self) -> bool {
        self.log_budget.borrow_mut().take(self.now_ms())
    }

    /// The close line of `conn`, if the shard's budget allows, with the
    /// count of lines its own budget suppressed; if not, that count goes
    /// to the shard's summary.
    pub(crate) fn admit_close_line(&self, conn: &Conn) -> Option<u64> {
        let suppressed = conn.log_budget.borrow_mut().take_suppressed();
        if self.admit_shard_line() {
            return Some(suppressed);
        }
        self.log_budget.borrow_mut().count_suppressed(suppressed);
        None
    }

    /// Writes the shard's summary once its bucket has room: a flood that
    /// ended leaves its count in the log even if no line follows it.
    pub(crate) fn summarise_suppressed_lines(&self) {
        let mut bucket = self.log_budget.borrow_mut();
        if !bucket.has_token(self.now_ms()) {
            return;
        }
        let n = bucket.take_suppressed();
        if n > 0 && bucket.take(self.now_ms()) {
            info!(shard = %self.id, suppressed = n, "… and {n} more lines on this shard suppressed (log rate limit)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_on_one_connection_is_cut_to_its_budget_over_time() {
        let (mut conn, mut shard) = (LogBucket::per_connection(0), LogBucket::per_shard(0));
        let (mut written, mut summarised) = (0u64, 0u64);
        // 100 000 lines over 60 s of shard clock.
        for i in 0..100_000u64 {
            let admission = admit(&mut conn, &mut shard, i * 60_000 / 100_000);
            if admission.admitted {
                written += 1;
                summarised += admission.connection_suppressed;
            }
        }
        let refills = 60_000 / limits::LOG_LINES_PER_CONNECTION_REFILL_MS;
        let most = u64::from(limits::LOG_LINES_PER_CONNECTION_BURST) + refills;
        assert!(written <= most, "{written} lines, budget {most}");
        assert!(written >= u64::from(limits::LOG_LINES_PER_CONNECTION_BURST));
        // Every line is written or counted in a summary (the last one is
        // the close line's).
        assert_eq!(written + summarised + conn.take_suppressed(), 100_000);
        assert_eq!(
            shard.take_suppressed(),
            0,
            "one connection stays within the shard's budget"
        );
    }

    #[test]
    fn the_shard_bucket_cuts_a_burst_across_many_connections() {
        let mut shard = LogBucket::new(5, 1000, 0);
        let mut conns: Vec<LogBucket> = (0..20).map(|_| LogBucket::new(2, 1000, 0)).collect();
        let admitted = conns
            .iter_mut()
            .filter_map(|c| admit(c, &mut shard, 0).admitted.then_some(()))
            .count();
        assert_eq!(
            admitted, 5,
            "the shard's burst, whatever each connection has"
        );
        // A connection the shard refused has the line in its own summary.
        assert_eq!(conns[10].take_suppressed(), 1);
        // Once the shard's bucket refills, the next line carries the
        // shard-wide count.
        let next = admit(&mut conns[19], &mut shard, 1000);
        assert!(next.admitted);
        assert_eq!(next.shard_suppressed, 15);
        assert_eq!(next.connection_suppressed, 1);
    }

    #[test]
    fn a_line_refused_by_its_connection_does_not_spend_the_shard_s_budget() {
        let mut shard = LogBucket::new(2, 1000, 0);
        let mut noisy = LogBucket::new(1, 1000, 0);
        let mut quiet = LogBucket::new(1, 1000, 0);
        assert!(admit(&mut noisy, &mut shard, 0).admitted);
        for _ in 0..100 {
            assert!(!admit(&mut noisy, &mut shard, 0).admitted);
        }
        assert!(admit(&mut quiet, &mut shard, 0).admitted);
        assert_eq!(shard.take_suppressed(), 0);
        assert_eq!(noisy.take_suppressed(), 100);
    }
}
