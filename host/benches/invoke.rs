//! `invoke`: Warden's invocation path against bare wasmtime, same engine,
//! same component (examples/hello-world), same run.
//!
//! - `bare_wasmtime`: new `Store` (default WASI context), instantiate from an
//!   `InstancePre`, call `handle`, drop — the floor for a fresh instance.
//! - `handle_http`: `LoadedExtension::handle_http` — concurrency slot, fresh
//!   store with memory limiter, CPU-deadline callback, captured stdio,
//!   wall-clock timeout, instantiate, call, stdio logging, error
//!   classification.
//! - `http_router`: one `GET /_extensions/hello/greet/bench` through
//!   `api::router`, as `warden serve` builds it (an extension loaded by
//!   the registry, audit categories off as by default): axum's routing, the
//!   authentication middleware (a Basic credential, from the login cache
//!   after the first call), the route permission check, the request's
//!   conversion, the session, `handle_http`, the response's conversion. Not
//!   timed: the socket and hyper's parsing of the bytes, and writing the
//!   response body out.
//!
//! Every timed call must answer 200 (checked in the loop: an error path is
//! never timed as a success). The goal is handle_http ≤ 1.10× bare. Run
//! with `cargo bench -p warden-host --bench invoke` (unset `RUST_BACKTRACE`
//! first: it makes wasmtime capture backtraces).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, header};
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use tower_service::Service as _;
use warden_host::api::{AppState, router};
use warden_host::audit::{AuditLog, Category};
use warden_host::registry::Registry;
use warden_host::runtime::bindings::{http_handler, log, types};
use warden_host::runtime::session::{Session, Sessions};
use warden_host::runtime::{HttpRequest, Runtime, RuntimeConfig};
use warden_host::security::config::{InternalUser, Role, SecurityConfig};
use warden_host::security::{Security, password};
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

/// Panics unless the call answered 200: the timed loops never time an
/// error path as a success.
fn ok_200(what: &str, status: wasmtime::Result<u16>) -> u16 {
    match status {
        Ok(200) => 200,
        Ok(other) => panic!("{what} answered {other}"),
        Err(e) => panic!("{what} failed: {e:#}"),
    }
}

fn run(c: &mut Criterion) -> wasmtime::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // Under valgrind, which cannot reserve the default pool's terabytes of
    // address space: `INVOKE_POOL=<instances>` sizes the pool (nothing
    // else changes; one instance at a time is all the bench uses).
    let pool = std::env::var("INVOKE_POOL").ok().and_then(|n| n.parse().ok());
    let runtime = Runtime::new(RuntimeConfig {
        max_instances: pool.unwrap_or(RuntimeConfig::default().max_instances),
        ..RuntimeConfig::default()
    })?;

    // Warden: the extension as `warden serve` loads it.
    let dir = tempfile::tempdir()?;
    let ext_dir = dir.path().join("extensions").join("hello");
    std::fs::create_dir_all(&ext_dir)?;
    std::fs::copy(warden_test_artifacts::HELLO_WORLD, ext_dir.join("hello.wasm"))?;
    std::fs::write(
        ext_dir.join("extension.toml"),
        match pool {
            // The extension's share must fit the small pool.
            Some(n) => format!(
                "id = \"hello\"\nversion = \"1\"\ncomponent = \"hello.wasm\"\n[limits]\nmax_concurrency = {}\n",
                n / 2
            ),
            None => "id = \"hello\"\nversion = \"1\"\ncomponent = \"hello.wasm\"\n".to_owned(),
        },
    )?;
    let registry = Arc::new(Registry::load_dir(
        &runtime,
        &dir.path().join("extensions"),
        dir.path(),
        &Default::default(),
    ));
    let extension = registry
        .get("hello")
        .ok_or_else(|| wasmtime::Error::msg("the hello extension did not load"))?
        .clone();

    // The HTTP front: a user allowed to call the extension's routes.
    let mut config = SecurityConfig::default();
    config.roles.insert(
        "hello_caller".into(),
        Role { extension_permissions: vec!["extension:hello/*".into()], ..Role::default() },
    );
    let user = InternalUser {
        hash: Some(password::hash("Bench-Password-1")?),
        opendistro_security_roles: vec!["hello_caller".into()],
        ..InternalUser::default()
    };
    config.internal_users.insert("bench".into(), user);
    let state = Arc::new(AppState {
        registry: registry.clone(),
        security: Arc::new(Security::new(config.with_static()?)),
        // Off by default in `warden serve`: logins and granted calls.
        audit: Arc::new(AuditLog::open(
            &dir.path().join("audit"),
            BTreeSet::from([Category::Authenticated, Category::GrantedPrivileges]),
        )?),
        cluster: None,
        scheduler: None,
        lifecycle: None,
        sessions: Arc::new(Sessions::without_cluster()),
        started: std::time::Instant::now(),
        body_timeout: std::time::Duration::from_secs(60),
    });
    let app = router(state);
    let authorization =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:Bench-Password-1"));

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
    let handle_http = async || -> wasmtime::Result<u16> {
        let request =
            HttpRequest { method: "GET".into(), path: "/greet/bench".into(), ..HttpRequest::default() };
        Ok(extension.handle_http(request, Session::default()).await?.status)
    };
    let http = async || -> wasmtime::Result<u16> {
        let request = Request::builder()
            .method("GET")
            .uri("/_extensions/hello/greet/bench")
            .header(header::AUTHORIZATION, &authorization)
            .body(Body::empty())?;
        // As `api::serve` does for every request.
        let response = app.clone().call(request).await?;
        Ok(response.status().as_u16())
    };
    // All three must really answer before they are timed (the first HTTP
    // call also pays bcrypt and fills the login cache).
    for (what, status) in [
        ("bare", rt.block_on(bare())),
        ("handle_http", rt.block_on(handle_http())),
        ("http", rt.block_on(http())),
    ] {
        if status? != 200 {
            return Err(wasmtime::Error::msg(format!("hello-world did not answer 200 ({what})")));
        }
    }

    // Profiling mode: `INVOKE_PROFILE=<bare|handle_http|http_router>:<n>`
    // runs n calls of one path and nothing else, for callgrind or perf (the
    // instructions of n calls minus those of 0 calls are n calls' own).
    if let Ok(spec) = std::env::var("INVOKE_PROFILE") {
        let (what, n) = spec.split_once(':').unwrap_or((spec.as_str(), "10000"));
        let n: u64 = n.parse().map_err(|e| wasmtime::Error::msg(format!("INVOKE_PROFILE count: {e}")))?;
        for _ in 0..n {
            match what {
                "bare" => ok_200("bare", rt.block_on(bare())),
                "handle_http" => ok_200("handle_http", rt.block_on(handle_http())),
                "http_router" => ok_200("http_router", rt.block_on(http())),
                other => return Err(wasmtime::Error::msg(format!("INVOKE_PROFILE: no path `{other}`"))),
            };
        }
        std::process::exit(0);
    }

    let mut group = c.benchmark_group("invoke");
    group.bench_function("bare_wasmtime", |b| b.iter(|| ok_200("bare", rt.block_on(bare()))));
    group.bench_function("handle_http", |b| b.iter(|| ok_200("handle_http", rt.block_on(handle_http()))));
    group.bench_function("http_router", |b| b.iter(|| ok_200("http_router", rt.block_on(http()))));
    group.finish();

    // Criterion runs them one after the other, so machine noise that
    // drifts over seconds lands on one side. Interleaving them call by call
    // and comparing medians gives the ratio the goal is stated in.
    let rounds = 20_000;
    let mut times = [Vec::with_capacity(rounds), Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        ok_200("bare", rt.block_on(bare()));
        times[0].push(t.elapsed().as_nanos() as u64);
        let t = std::time::Instant::now();
        ok_200("handle_http", rt.block_on(handle_http()));
        times[1].push(t.elapsed().as_nanos() as u64);
        let t = std::time::Instant::now();
        ok_200("http_router", rt.block_on(http()));
        times[2].push(t.elapsed().as_nanos() as u64);
    }
    for v in &mut times {
        v.sort_unstable();
    }
    let median = |v: &Vec<u64>| v[v.len() / 2] as f64 / 1000.0;
    let p99 = |v: &Vec<u64>| v[v.len() * 99 / 100] as f64 / 1000.0;
    let [b, w, h] = &times;
    println!(
        "invoke/interleaved: bare median {:.2} µs (p99 {:.2}), handle_http median {:.2} µs (p99 {:.2}), \
         http_router median {:.2} µs (p99 {:.2}); handle_http/bare {:.3}, http_router/bare {:.3}",
        median(b),
        p99(b),
        median(w),
        p99(w),
        median(h),
        p99(h),
        median(w) / median(b),
        median(h) / median(b),
    );
    Ok(())
}

criterion_group!(benches, bench);
criterion_main!(benches);
