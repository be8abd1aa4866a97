//! `warden:extension/log` (baseline): guest log records go to the host log,
//! tagged with the extension id, at the guest's level.
//!
//! A guest must not be able to flood the server log (disk, log shippers):
//! every record — from this interface or a line of captured stdout/stderr —
//! passes a [`LogBudget`]: per invocation at most [`INVOCATION_BYTES`] and
//! [`INVOCATION_RECORDS`], and per extension a token bucket
//! ([`LogRate`]: a burst of [`RATE_BURST_BYTES`], then
//! [`RATE_BYTES_PER_SEC`]) shared by all its invocations, so many
//! concurrent or back-to-back requests cannot multiply the per-invocation
//! budget. Over budget, records are dropped and counted; the invocation
//! ends with one line saying how many were dropped.
//!
//! Per-invocation context: the [`LogBudget`], reached through [`LogView`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use wasmtime::component::{HasData, Linker};

use super::{CapView, Covers, Versions};
use crate::capability::ImportClass;
use crate::runtime::bindings::{log, types};

/// The imports linked here: baseline, `warden:extension@0.1.x`.
pub const IMPORTS: &[Covers] = &[Covers {
    package: "warden:extension",
    items: &["log", "types"],
    versions: Versions::Ours01,
    class: ImportClass::Baseline,
}];

/// What `log` host functions see: the invocation's log budget.
pub type LogView<'a> = CapView<'a, LogBudget>;

/// The `HasData` marker of `warden:extension/log` and `types`.
#[derive(Debug)]
pub struct Log;

impl HasData for Log {
    type Data<'a> = LogView<'a>;
}

/// Longest message kept; longer ones are cut (at a char boundary), not refused.
pub const MAX_MESSAGE: usize = 8 * 1024;
/// Log bytes one invocation may write (all sources together).
pub const INVOCATION_BYTES: u64 = 1 << 20;
/// Log records one invocation may write (all sources together).
pub const INVOCATION_RECORDS: u64 = 10_000;
/// What a record costs besides its message: a log line carries a
/// timestamp, level, target and the extension id, so tiny records are not free.
pub const RECORD_OVERHEAD: u64 = 64;
/// Bytes an extension may log at once after being quiet (all invocations).
pub const RATE_BURST_BYTES: u64 = 2 << 20;
/// Bytes an extension may log per second, sustained (all invocations).
pub const RATE_BYTES_PER_SEC: u64 = 256 << 10;

pub fn link<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> LogView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, Log>(linker, view)?;
    log::add_to_linker::<T, Log>(linker, view)
}

impl types::Host for LogView<'_> {}

impl log::Host for LogView<'_> {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        if !self.ctx.admit(message.len()) {
            return Ok(());
        }
        let message = truncate(&message, MAX_MESSAGE);
        let extension = &**self.extension;
        match level {
            log::Level::Trace => tracing::trace!(target: "warden::guest", extension, "{message}"),
            log::Level::Debug => tracing::debug!(target: "warden::guest", extension, "{message}"),
            log::Level::Info => tracing::info!(target: "warden::guest", extension, "{message}"),
            log::Level::Warn => tracing::warn!(target: "warden::guest", extension, "{message}"),
            log::Level::Error => tracing::error!(target: "warden::guest", extension, "{message}"),
        }
        Ok(())
    }
}

/// One extension's log rate: a token bucket of bytes, shared by all its
/// invocations.
#[derive(Debug)]
pub struct LogRate {
    burst: u64,
    per_sec: u64,
    /// Bytes available now, and when that was computed.
    bucket: Mutex<(u64, Instant)>,
}

impl Default for LogRate {
    fn default() -> Self {
        LogRate::new(RATE_BURST_BYTES, RATE_BYTES_PER_SEC)
    }
}

impl LogRate {
    pub fn new(burst: u64, per_sec: u64) -> Self {
        LogRate { burst, per_sec, bucket: Mutex::new((burst, Instant::now())) }
    }

    /// Takes `bytes` from the bucket if they are there.
    fn take(&self, bytes: u64, now: Instant) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let (available, since) = *bucket;
        let elapsed = now.saturating_duration_since(since);
        let refill = u64::try_from(elapsed.as_micros().saturating_mul(u128::from(self.per_sec)) / 1_000_000)
            .unwrap_or(u64::MAX);
        let available = available.saturating_add(refill).min(self.burst);
        // Only advance the clock by what was refilled, so fractions accrue.
        *bucket = (available, if refill > 0 { now } else { since });
        if bytes > available {
            return false;
        }
        bucket.0 = available - bytes;
        true
    }
}

/// One invocation's log budget; also counts what it dropped.
#[derive(Debug)]
pub struct LogBudget {
    rate: Arc<LogRate>,
    bytes: u64,
    records: u64,
    pub dropped_records: u64,
    pub dropped_bytes: u64,
}

impl LogBudget {
    pub fn new(rate: Arc<LogRate>) -> Self {
        LogBudget { rate, bytes: 0, records: 0, dropped_records: 0, dropped_bytes: 0 }
    }

    /// Whether a record whose message is `len` bytes may be written; if
    /// not it is counted as dropped. (Cut messages are charged as cut.)
    pub fn admit(&mut self, len: usize) -> bool {
        let kept = len.min(MAX_MESSAGE) as u64;
        let cost = kept.saturating_add(RECORD_OVERHEAD);
        let fits = self.records < INVOCATION_RECORDS
            && self.bytes.saturating_add(cost) <= INVOCATION_BYTES
            && self.rate.take(cost, Instant::now());
        if fits {
            self.records += 1;
            self.bytes += cost;
        } else {
            self.dropped_records += 1;
            self.dropped_bytes = self.dropped_bytes.saturating_add(len as u64);
        }
        fits
    }

    /// Logs one line if anything was dropped (at the end of the invocation).
    pub fn report(&self, extension: &str) {
        if self.dropped_records > 0 {
            tracing::warn!(
                extension,
                dropped_records = self.dropped_records,
                dropped_bytes = self.dropped_bytes,
                "dropped {} log records ({} bytes) from extension {extension}: over its log budget \
                 ({} KiB and {} records per invocation, {} KiB/s per extension)",
                self.dropped_records,
                self.dropped_bytes,
                INVOCATION_BYTES >> 10,
                INVOCATION_RECORDS,
                RATE_BYTES_PER_SEC >> 10,
            );
        }
    }
}

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("héllo", 3), "hé");
        assert_eq!(super::truncate("hi", 16), "hi");
    }

    #[test]
    fn an_invocation_stops_at_its_bytes_and_records() {
        let rate = Arc::new(LogRate::new(u64::MAX, 0));
        let mut budget = LogBudget::new(rate.clone());
        // 16 KiB messages are charged as cut (8 KiB + overhead).
        let fit = INVOCATION_BYTES / (MAX_MESSAGE as u64 + RECORD_OVERHEAD);
        for _ in 0..fit {
            assert!(budget.admit(16 << 10));
        }
        assert!(!budget.admit(16 << 10));
        assert!(!budget.admit(1000));
        assert_eq!((budget.dropped_records, budget.dropped_bytes), (2, (16 << 10) + 1000));

        let mut budget = LogBudget::new(rate);
        for _ in 0..INVOCATION_RECORDS {
            assert!(budget.admit(0));
        }
        assert!(!budget.admit(0), "records are capped even when tiny");
    }

    #[test]
    fn the_extension_rate_is_shared_and_refills() {
        let rate = LogRate::new(1000, 100);
        let start = Instant::now();
        assert!(rate.take(600, start));
        assert!(!rate.take(600, start), "the burst is shared");
        assert!(rate.take(400, start));
        assert!(!rate.take(1, start));
        // 100 bytes a second: after 2 s, 200 bytes, never more than the burst.
        let later = start + Duration::from_secs(2);
        assert!(rate.take(200, later));
        assert!(!rate.take(1, later));
        assert!(rate.take(1000, later + Duration::from_secs(3600)));
    }
}
