//! `invoke`: Warden's whole invocation path against bare wasmtime, same
//! engine, same component (examples/hello-world), same run.
//!
//! - `bare_wasmtime`: new `Store` (default WASI context), instantiate from an
//!   `InstancePre`, call `handle`, drop — the floor for a fresh instance.
//! - `warden`: `LoadedExtension::handle_http` — concurrency slot, fresh store
//!   with memory limiter, CPU-deadline callback, captured stdio, wall-clock
//!   timeout, instantiate, call, stdio logging, error classification.
//!
//! The goal is warden ≤ 1.10× bare. Run with `cargo bench -p warden-host --bench invoke`
//! (unset `RUST_BACKTRACE` first: it makes wasmtime capture backtraces).

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use warden_host::runtime::bindings::{http_handler, log, types};
use warden_host::runtime::capabilities::cluster::Session;
use warden_host::runtime::{HttpRequest, LoadedExtension, Runtime, RuntimeConfig};
use wasmtime::Store;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl types::Host for BareState {}

impl log::Host for BareState {
    async fn write(&mut self, _level: log::Level, _message: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

fn request() -> http_handler::Request {
    http_handler::Request {
        method: "GET".into(),
        path: "/greet/bench".into(),
        query: vec![],
        headers: vec![],
        body: vec![],
        user: String::new(),
    }
}

fn bench(c: &mut Criterion) {
    if let Err(e) = run(c) {
        eprintln!("invoke bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn run(c: &mut Criterion) -> wasmtime::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let runtime = Runtime::new(RuntimeConfig::default())?;

    // Warden: the extension as `warden serve` loads it.
    let dir = tempfile::tempdir()?;
    let ext_dir = dir.path().join("hello");
    std::fs::create_dir_all(&ext_dir)?;
    std::fs::copy(warden_test_artifacts::HELLO_WORLD, ext_dir.join("hello.wasm"))?;
    std::fs::write(
        ext_dir.join("extension.toml"),
        "id = \"hello\"\nversion = \"1\"\ncomponent = \"hello.wasm\"\n",
    )?;
    let extension = LoadedExtension::load(&runtime, &ext_dir, dir.path())?;

    // Bare wasmtime: the same component on the same engine.
    let (component, _) = runtime.load_component(Path::new(warden_test_artifacts::HELLO_WORLD))?;
    let mut linker: Linker<BareState> = Linker::new(runtime.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    log::add_to_linker::<_, HasSelf<BareState>>(&mut linker, |s| s)?;
    types::add_to_linker::<_, HasSelf<BareState>>(&mut linker, |s| s)?;
    let pre = linker.instantiate_pre(&component)?;
    let indices = http_handler::GuestIndices::new(&pre)?;

    let bare = async || -> wasmtime::Result<u16> {
        let mut store = Store::new(
            runtime.engine(),
            BareState { wasi: WasiCtx::builder().build(), table: ResourceTable::new() },
        );
        // The engine interrupts on epochs; without a deadline the call traps.
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre.instantiate_async(&mut store).await?;
        let guest = indices.load(&mut store, &instance)?;
        Ok(guest.call_handle(&mut store, &request()).await?.status)
    };
    let warden = async || -> wasmtime::Result<u16> {
        let request =
            HttpRequest { method: "GET".into(), path: "/greet/bench".into(), ..HttpRequest::default() };
        Ok(extension.handle_http(request, Session::default()).await?.status)
    };
    // Both must really answer before they are timed.
    if rt.block_on(bare())? != 200 || rt.block_on(warden())? != 200 {
        return Err(wasmtime::Error::msg("hello-world did not answer 200"));
    }

    let mut group = c.benchmark_group("invoke");
    group.bench_function("bare_wasmtime", |b| b.iter(|| rt.block_on(bare())));
    group.bench_function("warden", |b| b.iter(|| rt.block_on(warden())));
    group.finish();

    // Criterion runs the two one after the other, so machine noise that
    // drifts over seconds lands on one side. Interleaving them call by call
    // and comparing medians gives the ratio the goal is stated in.
    let rounds = 20_000;
    let (mut bare_ns, mut warden_ns) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        rt.block_on(bare())?;
        bare_ns.push(t.elapsed().as_nanos() as u64);
        let t = std::time::Instant::now();
        rt.block_on(warden())?;
        warden_ns.push(t.elapsed().as_nanos() as u64);
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2] as f64 / 1000.0
    };
    let p99 = |v: &Vec<u64>| v[v.len() * 99 / 100] as f64 / 1000.0;
    let (b, w) = (median(&mut bare_ns), median(&mut warden_ns));
    println!(
        "invoke/interleaved: bare median {b:.2} µs (p99 {:.2}), warden median {w:.2} µs (p99 {:.2}), ratio {:.3}",
        p99(&bare_ns),
        p99(&warden_ns),
        w / b
    );
    Ok(())
}

criterion_group!(benches, bench);
criterion_main!(benches);
