//! Baseline WASI: io, clocks, random and cli (no environment, no args).
//! Sockets are never linked here: `wasi:sockets` needs the `network` grant.
//! The filesystem interfaces are [`super::files`]'s (no directory opened
//! unless `files` is granted; no links; the disk quota).
//!
//! Per-invocation context: the store's `WasiCtx` and resource table, which
//! wasmtime-wasi's own `HasData` markers reach through `WasiView`.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::bindings::{cli, clocks, io, random};
use wasmtime_wasi::random::WasiRandom;

use super::{Covers, Versions};
use crate::capability::ImportClass;

/// The imports linked here: baseline, WASI 0.2.
pub const IMPORTS: &[Covers] = &[
    Covers {
        package: "wasi:io",
        items: &["error", "poll", "streams"],
        versions: Versions::Wasi02,
        class: ImportClass::Baseline,
    },
    Covers {
        package: "wasi:clocks",
        items: &["wall-clock", "monotonic-clock"],
        versions: Versions::Wasi02,
        class: ImportClass::Baseline,
    },
    Covers {
        package: "wasi:random",
        items: &["random", "insecure", "insecure-seed"],
        versions: Versions::Wasi02,
        class: ImportClass::Baseline,
    },
    Covers {
        package: "wasi:cli",
        items: &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
        versions: Versions::Wasi02,
        class: ImportClass::Baseline,
    },
];

/// `wasi:io` host traits are implemented on the resource table itself.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links the baseline WASI interfaces.
pub fn link<T: WasiView + 'static>(l: &mut Linker<T>) -> wasmtime::Result<()> {
    io::error::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<T, HasIo>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    Ok(())
}
