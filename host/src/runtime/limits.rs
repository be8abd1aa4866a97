//! Resource limits for one invocation, the per-component maxima the pool
//! enforces at load, and the store limiter that enforces the memory cap on
//! the sum of a store's memories.

use std::time::Duration;

use crate::manifest::LimitOverrides;

/// How often the engine's epoch advances. CPU deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to each invocation of an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on the sum of an instance's linear memories, in bytes.
    pub memory_bytes: u64,
    /// Time the guest may spend executing wasm, counted in epoch ticks.
    pub cpu: Duration,
    /// Wall-clock time for the whole invocation, host calls included.
    pub timeout: Duration,
    /// Invocations of this extension running at once.
    pub max_concurrency: u32,
    /// How long a request waits for a free slot before a 503.
    pub queue_timeout: Duration,
    /// Disk quota of the `files` directory, all files and directories together.
    pub files_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu: Duration::from_millis(1_000),
            timeout: Duration::from_secs(10),
            max_concurrency: 32,
            queue_timeout: Duration::from_millis(500),
            files_bytes: 256 << 20,
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
            files_bytes: o.files_mib.map_or(self.files_bytes, |m| m.saturating_mul(1 << 20)),
        }
    }

    /// The CPU budget in epoch ticks (at least one).
    pub fn cpu_ticks(&self) -> u64 {
        (self.cpu.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// Linear memories one component instance may hold (each core module at most
/// one, see [`MAX_MEMORIES_PER_MODULE`]). A Rust `wasm32-wasip2` component has
/// one; the second is headroom for a component wrapping a preview-1 adapter.
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables one component instance may hold (main module + wit-component shims).
pub const MAX_TABLES_PER_COMPONENT: u32 = 4;
/// Core module instances one component instance may create (main module,
/// shims, fixups, an adapter, with headroom).
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 8;
/// Linear memories one core module may define (multi-memory is refused).
pub const MAX_MEMORIES_PER_MODULE: u32 = 1;
/// Tables one core module may define.
pub const MAX_TABLES_PER_MODULE: u32 = 1;
/// Table elements one store may hold, summed over its tables. Tables hold
/// function references; 100k entries is far beyond any real guest.
pub const MAX_TABLE_ELEMENTS_PER_STORE: usize = 100_000;

/// Resources one store (one invocation) may hold at once: entries of the
/// host's resource table (WASI streams, descriptors…; a pollable takes two,
/// itself and what it waits on) and, separately, component-model handles. Each costs host memory outside the
/// guest's memory cap (a few hundred bytes), so the defaults (1,000,000 and
/// 100,000) let 32 invocations hold hundreds of MiB; a real guest holds tens.
pub const MAX_HANDLES_PER_STORE: usize = 4_096;

/// Enforces the memory cap on the SUM of a store's linear memories (a
/// component may hold several, each checked alone would multiply the cap)
/// and a cap on the sum of its table elements; remembers that it did, so the
/// invocation's error can say "memory limit" instead of a bare trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    /// Bytes of every memory of the store, initial sizes included.
    memory_bytes: usize,
    /// Elements of every table of the store.
    table_elements: usize,
    pub exceeded: bool,
}

impl MemoryLimiter {
    pub fn new(max_bytes: u64) -> Self {
        MemoryLimiter {
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            memory_bytes: 0,
            table_elements: 0,
            exceeded: false,
        }
    }

    /// Bytes of linear memory the store holds now.
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }
}

/// The error a guest is stopped with when its memories grow past its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (its memories would hold {wanted} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub wanted: usize,
}

impl crate::error::HasKind for MemoryLimitExceeded {
    fn kind(&self) -> crate::error::ErrorKind {
        // The guest's own doing, not a host that is busy: retrying the same
        // call hits the same cap.
        crate::error::ErrorKind::Internal
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    /// Called with `current == 0` for each memory an instantiation creates
    /// and with the old size on every `memory.grow`, so the running total is
    /// the sum of all memories. A growth the limiter allowed can still fail
    /// later (above the memory's declared maximum); its bytes stay counted,
    /// which errs on the safe side and only costs the guest that tried.
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_bytes.saturating_add(desired.saturating_sub(current));
        if total > self.max_bytes {
            self.exceeded = true;
            // An error (not `Ok(false)`) traps the guest right away; a Rust
            // guest would abort on allocation failure anyway.
            return Err(MemoryLimitExceeded { limit: self.max_bytes, wanted: total }.into());
        }
        self.memory_bytes = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.table_elements.saturating_add(desired.saturating_sub(current));
        if total > MAX_TABLE_ELEMENTS_PER_STORE {
            return Ok(false);
        }
        self.table_elements = total;
        Ok(true)
    }

    // The pool refuses such components at load already; a store-level cap
    // too means no configuration slip can reopen the gap.
    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES_PER_COMPONENT as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES_PER_COMPONENT as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES_PER_COMPONENT as usize
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter;

    use super::*;

    #[test]
    fn the_cap_counts_the_sum_of_all_memories() -> wasmtime::Result<()> {
        let mut limiter = MemoryLimiter::new(64 << 20);
        // Three memories of 20 MiB each are created: 60 MiB in all, fits.
        for _ in 0..3 {
            assert!(limiter.memory_growing(0, 20 << 20, None)?);
        }
        assert_eq!(limiter.memory_bytes(), 60 << 20);
        // A fourth of 20 MiB alone is far under the cap, but the sum is not.
        let refused = limiter.memory_growing(0, 20 << 20, None);
        assert!(refused.is_err_and(|e| e.downcast_ref::<MemoryLimitExceeded>().is_some()));
        assert!(limiter.exceeded);
        assert_eq!(limiter.memory_bytes(), 60 << 20, "a refused growth is not counted");
        Ok(())
    }

    #[test]
    fn growing_one_memory_counts_only_the_growth() -> wasmtime::Result<()> {
        let mut limiter = MemoryLimiter::new(64 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None)?);
        assert!(limiter.memory_growing(0, 1 << 20, None)?);
        // The first memory grows 1 → 62 MiB: 63 MiB in all.
        assert!(limiter.memory_growing(1 << 20, 62 << 20, None)?);
        assert_eq!(limiter.memory_bytes(), 63 << 20);
        // Growing the second by 2 MiB crosses the cap.
        assert!(limiter.memory_growing(1 << 20, 3 << 20, None).is_err());
        assert!(limiter.exceeded);
        assert_eq!(limiter.memory_bytes(), 63 << 20);
        Ok(())
    }

    #[test]
    fn table_elements_are_summed_over_tables() -> wasmtime::Result<()> {
        let mut limiter = MemoryLimiter::new(64 << 20);
        assert!(limiter.table_growing(0, 60_000, None)?);
        assert!(!limiter.table_growing(0, 60_000, None)?, "the sum is over the cap");
        assert!(limiter.table_growing(0, 40_000, None)?);
        assert!(!limiter.table_growing(40_000, 40_001, None)?);
        assert!(!limiter.exceeded, "tables do not count as the memory cap");
        Ok(())
    }
}
