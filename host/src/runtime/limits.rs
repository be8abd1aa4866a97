//! Resource limits for one invocation, and the store limiter that enforces
//! the memory cap.

use std::time::Duration;

use crate::manifest::LimitOverrides;

/// How often the engine's epoch advances. CPU deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to each invocation of an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap per instance, in bytes.
    pub memory_bytes: u64,
    /// Time the guest may spend executing wasm, counted in epoch ticks.
    pub cpu: Duration,
    /// Wall-clock time for the whole invocation, host calls included.
    pub timeout: Duration,
    /// Invocations of this extension running at once.
    pub max_concurrency: u32,
    /// How long a request waits for a free slot before a 503.
    pub queue_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu: Duration::from_millis(1_000),
            timeout: Duration::from_secs(10),
            max_concurrency: 32,
            queue_timeout: Duration::from_millis(500),
        }
    }
}

impl Limits {
    /// These defaults with a manifest's overrides applied.
    pub fn with_overrides(self, o: &LimitOverrides) -> Limits {
        Limits {
            memory_bytes: o.memory_mib.map_or(self.memory_bytes, |m| m.saturating_mul(1 << 20)),
            cpu: o.cpu_ms.map_or(self.cpu, Duration::from_millis),
            timeout: o.timeout_ms.map_or(self.timeout, Duration::from_millis),
            max_concurrency: o.max_concurrency.unwrap_or(self.max_concurrency),
            queue_timeout: o.queue_timeout_ms.map_or(self.queue_timeout, Duration::from_millis),
        }
    }

    /// The CPU budget in epoch ticks (at least one).
    pub fn cpu_ticks(&self) -> u64 {
        (self.cpu.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// Enforces the memory cap and remembers that it did, so the invocation's
/// error can say "memory limit" instead of a bare trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    pub exceeded: bool,
}

impl MemoryLimiter {
    pub fn new(max_bytes: u64) -> Self {
        MemoryLimiter { max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX), exceeded: false }
    }
}

/// The error a guest is stopped with when it grows past its memory cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (wanted {wanted} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub wanted: usize,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            // An error (not `Ok(false)`) traps the guest right away; a Rust
            // guest would abort on allocation failure anyway.
            return Err(MemoryLimitExceeded { limit: self.max_bytes, wanted: desired }.into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any real guest.
        Ok(desired <= 100_000)
    }
}
