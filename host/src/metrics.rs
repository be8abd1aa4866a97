//! What Warden is doing, in numbers: the counters and histograms scraped at
//! `GET /_warden/metrics` in Prometheus' text format (0.0.4).
//!
//! One registry per process, like `tracing`'s subscriber: every layer counts
//! into it without being handed it, so this module imports nothing of the
//! crate and sits at the bottom of the layers (the store counts its
//! operations here too). Labels are bounded sets chosen by Warden (an
//! extension id, an outcome, a gate's name), never a user name, an index or
//! a path: a caller cannot grow the number of series.
//!
//! The hot paths pay one atomic add: an extension's series are resolved
//! once when it loads ([`ExtensionMetrics`]), the others are fixed label
//! sets resolved at first use of the registry.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// Outcomes of an invocation, in the `outcome` label.
pub const OUTCOMES: [&str; 7] = ["ok", "busy", "cpu_limit", "timeout", "memory_limit", "trap", "failed"];

/// How an invocation ended, one per [`OUTCOMES`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    Busy = 1,
    CpuLimit = 2,
    Timeout = 3,
    MemoryLimit = 4,
    Trap = 5,
    Failed = 6,
}

/// What invoked the guest, in the `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http = 0,
    Job = 1,
}

const KINDS: [&str; 2] = ["http", "job"];

/// Why a request was turned away before any work, in the `reason` label of
/// `warden_backpressure_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// An extension's concurrency slots stayed full for the queue timeout.
    ExtensionBusy,
    /// The connection cap (or an address's share of it) was reached.
    Connections,
    /// Too many failed logins from an address or for a name.
    LoginThrottled,
    /// Every password check was busy.
    AuthenticationBusy,
}

impl Backpressure {
    fn label(self) -> &'static str {
        match self {
            Backpressure::ExtensionBusy => "extension_busy",
            Backpressure::Connections => "connections",
            Backpressure::LoginThrottled => "login_throttled",
            Backpressure::AuthenticationBusy => "authentication_busy",
        }
    }
}

/// A token's life, in the `event` label of `warden_tokens_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEvent {
    Minted = 0,
    Verified = 1,
    Rejected = 2,
    Revoked = 3,
}

impl TokenEvent {
    fn label(self) -> &'static str {
        match self {
            TokenEvent::Minted => "minted",
            TokenEvent::Verified => "verified",
            TokenEvent::Rejected => "rejected",
            TokenEvent::Revoked => "revoked",
        }
    }
}

/// Which tokens, in the `kind` label of `warden_tokens_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// On-behalf-of tokens (Warden's own, minted per invocation or asked for).
    Obo = 0,
    /// Long-lived API tokens.
    ApiToken = 1,
}

impl TokenKind {
    fn label(self) -> &'static str {
        match self {
            TokenKind::Obo => "obo",
            TokenKind::ApiToken => "api_token",
        }
    }
}

/// Every family, registered once.
struct Families {
    registry: Registry,
    invocations: IntCounterVec,
    invocation_seconds: HistogramVec,
    backpressure: IntCounterVec,
    authentications: IntCounterVec,
    gate_decisions: IntCounterVec,
    tokens: IntCounterVec,
    job_runs: IntCounterVec,
    job_lateness: Histogram,
    store_operations: IntCounterVec,
    store_write_seconds: Histogram,
}

/// Buckets for invocations and store writes: 100 µs to 30 s.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0];

/// Buckets for a job's lateness (its start after its planned time): 10 ms
/// to 10 minutes.
const LATENESS_BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 600.0];

impl Families {
    fn build() -> Result<Families, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
            let family = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(family.clone()))?;
            Ok(family)
        };
        let invocations = counter(
            "warden_invocations_total",
            "Extension invocations, by extension, what invoked it and how it ended.",
            &["extension", "kind", "outcome"],
        )?;
        let backpressure = counter(
            "warden_backpressure_rejections_total",
            "Requests turned away before any work, by reason.",
            &["reason"],
        )?;
        let authentications = counter(
            "warden_authentications_total",
            "Authentications of REST requests, by result (success, failure).",
            &["result"],
        )?;
        let gate_decisions = counter(
            "warden_gate_decisions_total",
            "Cluster calls decided by the gates: allowed (gate \"all\": every gate it met allowed it), \
             partial (some parts of a multi request refused) or denied (by the gate named).",
            &["gate", "result"],
        )?;
        let tokens = counter(
            "warden_tokens_total",
            "Tokens minted, verified, rejected and revoked, by kind.",
            &["kind", "event"],
        )?;
        let job_runs = counter(
            "warden_job_runs_total",
            "Scheduled job runs, by outcome (success, failure, error, skipped, missed, suspended).",
            &["outcome"],
        )?;
        let store_operations = counter(
            "warden_store_operations_total",
            "Transactions on the embedded store, by operation (read, write) and result (ok, conflict: a \
             compare-and-set refused it, error).",
            &["op", "result"],
        )?;
        let invocation_seconds = HistogramVec::new(
            HistogramOpts::new(
                "warden_invocation_duration_seconds",
                "Time from taking a concurrency slot to the guest's answer, by extension.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["extension"],
        )?;
        registry.register(Box::new(invocation_seconds.clone()))?;
        let job_lateness = Histogram::with_opts(
            HistogramOpts::new(
                "warden_job_lateness_seconds",
                "How long after its planned time a scheduled run started.",
            )
            .buckets(LATENESS_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(job_lateness.clone()))?;
        let store_write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "warden_store_write_duration_seconds",
                "Time to commit a write transaction on the embedded store (durable on return).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(store_write_seconds.clone()))?;
        // Resident memory, open descriptors, CPU: what a soak watches.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Families {
            registry,
            invocations,
            invocation_seconds,
            backpressure,
            authentications,
            gate_decisions,
            tokens,
            job_runs,
            job_lateness,
            store_operations,
            store_write_seconds,
        })
    }
}

/// The process's families; `None` only if building them failed, which a
/// unit test rules out (metrics are then off, and the scrape says so).
static FAMILIES: LazyLock<Option<Families>> = LazyLock::new(|| match Families::build() {
    Ok(families) => Some(families),
    Err(e) => {
        tracing::error!("metrics are off: {e}");
        None
    }
});

fn families() -> Option<&'static Families> {
    FAMILIES.as_ref()
}

/// Every metric in Prometheus' text format (0.0.4).
pub fn render() -> Result<String, MetricsError> {
    let families = families().ok_or(MetricsError::Off)?;
    prometheus::TextEncoder::new()
        .encode_to_string(&families.registry.gather())
        .map_err(|e| MetricsError::Encode(e.to_string()))
}

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the metrics cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics are off: their registry could not be built (see the log)")]
    Off,
    #[error("the metrics could not be encoded: {0}")]
    Encode(String),
}

/// One extension's series, resolved when it loads: counting an invocation
/// is an atomic add, not a label lookup.
#[derive(Debug, Clone)]
pub struct ExtensionMetrics {
    series: Option<ExtensionSeries>,
}

#[derive(Debug, Clone)]
struct ExtensionSeries {
    /// `[kind][outcome]`.
    invocations: [[IntCounter; OUTCOMES.len()]; KINDS.len()],
    seconds: Histogram,
    busy: IntCounter,
}

impl ExtensionMetrics {
    pub fn new(extension: &str) -> ExtensionMetrics {
        let series = families().and_then(|f| {
            let outcomes = |kind: &str| -> Option<[IntCounter; OUTCOMES.len()]> {
                let counters: Vec<IntCounter> = OUTCOMES
                    .iter()
                    .filter_map(|outcome| {
                        f.invocations.get_metric_with_label_values(&[extension, kind, outcome]).ok()
                    })
                    .collect();
                counters.try_into().ok()
            };
            Some(ExtensionSeries {
                invocations: [outcomes(KINDS[0])?, outcomes(KINDS[1])?],
                seconds: f.invocation_seconds.get_metric_with_label_values(&[extension]).ok()?,
                busy: f
                    .backpressure
                    .get_metric_with_label_values(&[Backpressure::ExtensionBusy.label()])
                    .ok()?,
            })
        });
        ExtensionMetrics { series }
    }

    /// One invocation ended with `outcome` after `elapsed` (a busy one
    /// never ran: it counts as backpressure, not in the latency).
    pub fn invocation(&self, kind: Kind, outcome: Outcome, elapsed: Duration) {
        let Some(series) = &self.series else { return };
        series.invocations[kind as usize][outcome as usize].inc();
        if outcome == Outcome::Busy {
            series.busy.inc();
        } else {
            series.seconds.observe(elapsed.as_secs_f64());
        }
    }
}

/// Fixed-label counters, resolved on first use.
struct Fixed {
    authn_ok: IntCounter,
    authn_failed: IntCounter,
    allowed: IntCounter,
    partial: IntCounter,
    store_read_ok: IntCounter,
    store_read_err: IntCounter,
    /// By [`StoreWrite`].
    store_writes: [IntCounter; 3],
    /// `[kind][event]`: a guest's every cluster call verifies a token, so
    /// the count is an atomic add, not a label lookup on that path.
    tokens: [[IntCounter; 4]; 2],
}

static FIXED: LazyLock<Option<Fixed>> = LazyLock::new(|| {
    let f = families()?;
    let c = |family: &IntCounterVec, labels: &[&str]| family.get_metric_with_label_values(labels).ok();
    let events = |kind: TokenKind| -> Option<[IntCounter; 4]> {
        let events = [TokenEvent::Minted, TokenEvent::Verified, TokenEvent::Rejected, TokenEvent::Revoked];
        let counters: Vec<IntCounter> =
            events.iter().filter_map(|e| c(&f.tokens, &[kind.label(), e.label()])).collect();
        counters.try_into().ok()
    };
    Some(Fixed {
        tokens: [events(TokenKind::Obo)?, events(TokenKind::ApiToken)?],
        authn_ok: c(&f.authentications, &["success"])?,
        authn_failed: c(&f.authentications, &["failure"])?,
        allowed: c(&f.gate_decisions, &["all", "allowed"])?,
        partial: c(&f.gate_decisions, &["all", "partial"])?,
        store_read_ok: c(&f.store_operations, &["read", "ok"])?,
        store_read_err: c(&f.store_operations, &["read", "error"])?,
        store_writes: [
            c(&f.store_operations, &["write", "ok"])?,
            c(&f.store_operations, &["write", "conflict"])?,
            c(&f.store_operations, &["write", "error"])?,
        ],
    })
});

/// A request was turned away before any work.
pub fn backpressure(reason: Backpressure) {
    if let Some(f) = families() {
        f.backpressure.with_label_values(&[reason.label()]).inc();
    }
}

/// A REST request's authentication succeeded or failed.
pub fn authentication(succeeded: bool) {
    if let Some(fixed) = FIXED.as_ref() {
        if succeeded { fixed.authn_ok.inc() } else { fixed.authn_failed.inc() }
    }
}

/// A cluster call was allowed by every gate it met (`partial`: some parts
/// of a multi request were refused).
pub fn gates_allowed(partial: bool) {
    if let Some(fixed) = FIXED.as_ref() {
        if partial { fixed.partial.inc() } else { fixed.allowed.inc() }
    }
}

/// A cluster call was refused by `gate` (a gate's name from the audit's
/// vocabulary: a fixed set).
pub fn gate_denied(gate: &'static str) {
    if let Some(f) = families() {
        f.gate_decisions.with_label_values(&[gate, "denied"]).inc();
    }
}

/// A token event.
pub fn token(kind: TokenKind, event: TokenEvent) {
    if let Some(fixed) = FIXED.as_ref() {
        fixed.tokens[kind as usize][event as usize].inc();
    }
}

/// A job run ended with `outcome` (a fixed word: see the family's help).
pub fn job_run(outcome: &'static str) {
    if let Some(f) = families() {
        f.job_runs.with_label_values(&[outcome]).inc();
    }
}

/// A scheduled run started `late` after its planned time.
pub fn job_lateness(late: Duration) {
    if let Some(f) = families() {
        f.job_lateness.observe(late.as_secs_f64());
    }
}

/// A read transaction was opened (or could not be).
pub fn store_read(ok: bool) {
    if let Some(fixed) = FIXED.as_ref() {
        if ok { fixed.store_read_ok.inc() } else { fixed.store_read_err.inc() }
    }
}

/// How a write transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreWrite {
    Ok = 0,
    /// A compare-and-set check refused it (nothing written; not a fault).
    Conflict = 1,
    Error = 2,
}

/// A write transaction ended after `elapsed`.
pub fn store_write(outcome: StoreWrite, elapsed: Duration) {
    if let Some(fixed) = FIXED.as_ref() {
        fixed.store_writes[outcome as usize].inc();
    }
    if let Some(f) = families() {
        f.store_write_seconds.observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_registers_and_renders() -> Result<(), MetricsError> {
        assert!(families().is_some(), "the registry must build: a duplicate or invalid name is a bug");
        assert!(FIXED.is_some(), "every fixed series must resolve");
        let series = ExtensionMetrics::new("metrics-unit");
        assert!(series.series.is_some(), "an extension's series must resolve");
        series.invocation(Kind::Http, Outcome::Ok, Duration::from_millis(2));
        series.invocation(Kind::Job, Outcome::Busy, Duration::ZERO);
        let text = render()?;
        assert!(
            text.contains(r#"warden_invocations_total{extension="metrics-unit",kind="http",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"warden_invocations_total{extension="metrics-unit",kind="job",outcome="busy"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"warden_invocation_duration_seconds_count{extension="metrics-unit"} 1"#),
            "{text}"
        );
        Ok(())
    }
}
