//! `jobs`: what the scheduler adds to a job run, and what a dispatcher tick
//! costs as jobs pile up.
//!
//! - `run/bare`: `LoadedExtension::run_job` with no session — a fresh
//!   instance and the runner's call, the floor.
//! - `run/scheduled`: `Scheduler::run_now` on the same extension — the
//!   lease (a CAS write the store does not wait on the disk for: a lost
//!   lease only lets a job run again), owner resolved against the live
//!   security config, a fresh OBO token, the run, then the outcome, next run
//!   and the lease's release in one durable commit (CAS), the JOB_RUN audit
//!   line. That one durable commit dominates. Every timed run must be
//!   accepted (`run_now` returns true), and after the timing the last run
//!   must still have succeeded.
//! - `run/consent_check`: the owner's live consent looked up, as every run
//!   does before it starts (and every job-run cluster call again): compare
//!   with `run/scheduled` for its share of a run.
//! - `tick_scan/{none_due,all_due}/<n>` (n up to 100,000): finding the due jobs, as each
//!   dispatcher tick does, with n jobs stored.
//!
//! Run with `cargo bench -p warden-host --bench jobs`.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use warden_host::audit::AuditLog;
use warden_host::cluster::embedded::Embedded;
use warden_host::cluster::gateway::ClusterGateway;
use warden_host::registry::Registry;
use warden_host::runtime::session::{Session, Sessions};
use warden_host::runtime::{JobContext, JobOutcome};
use warden_host::runtime::{Runtime, RuntimeConfig};
use warden_host::scheduler::jobs::{JobStore, Registration};
use warden_host::scheduler::schedule::Schedule;
use warden_host::scheduler::{Scheduler, SchedulerConfig};
use warden_host::security::consents::{self, AllScopes, Consent, Consents, Scopes};
use warden_host::security::obo::TokenService;
use warden_host::security::{IdentitySource, Security};
use warden_host::store::Store;

type Error = Box<dyn std::error::Error>;

fn bench(c: &mut Criterion) {
    if let Err(e) = run(c) {
        eprintln!("jobs bench failed: {e}");
        std::process::exit(1);
    }
}

fn registration(user: &str, name: &str) -> Registration<'static> {
    Registration {
        extension: "bench",
        user: Box::leak(user.to_owned().into_boxed_str()),
        auth_source: "internal",
        backend_roles: &[],
        name: Box::leak(name.to_owned().into_boxed_str()),
        schedule: Schedule::Interval(3600),
        params: "{}".into(),
        options: Default::default(),
    }
}

fn run(c: &mut Criterion) -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join("store").join("warden.redb"))?);
    let (security, _) = Security::bootstrap(store.clone(), None, Some("Bench-Admin-Pass-1"))?;
    let tokens = Arc::new(TokenService::load_or_create(&store, "bench")?);
    let consents = Arc::new(Consents::new(store.clone()));
    let security = Arc::new(security.with_obo(tokens.clone()).with_consents(consents.clone()));
    let audit = Arc::new(AuditLog::open(&dir.path().join("audit"), Default::default())?);
    let backend = Embedded::new(store.clone(), "bench")?;
    let gateway =
        Arc::new(ClusterGateway::new(Box::new(backend), tokens.clone(), security.clone(), audit.clone()));
    let sessions = Arc::new(Sessions::new(gateway, tokens));

    let runtime = Runtime::new(RuntimeConfig::default())?;
    let ext_dir = dir.path().join("extensions").join("bench");
    std::fs::create_dir_all(&ext_dir)?;
    std::fs::copy(warden_test_artifacts::GUEST_HOST_CALLS, ext_dir.join("c.wasm"))?;
    std::fs::write(
        ext_dir.join("extension.toml"),
        "id = \"bench\"\nversion = \"1\"\ncomponent = \"c.wasm\"\ncapabilities = [\"cluster\", \"scheduler\"]\n",
    )?;
    let registry = Arc::new(Registry::load_dir(
        &runtime,
        &dir.path().join("extensions"),
        dir.path(),
        &Default::default(),
    ));
    let extension = registry.get("bench").ok_or("the bench extension did not load")?.clone();
    let jobs = JobStore::new(store.clone());
    let scheduler = Arc::new(Scheduler::new(
        jobs,
        security,
        sessions,
        audit,
        registry.clone(),
        SchedulerConfig::default(),
    ));
    let (id, _) = scheduler.jobs().register(registration("admin", "bench"), 0)?;
    // Runs need the owner's live consent, looked up at every run.
    consents.put(&Consent {
        id: consents::id_for(IdentitySource::Internal, "admin", "bench"),
        user: "admin".into(),
        auth_source: IdentitySource::Internal,
        extension: "bench".into(),
        extension_version: None,
        component_sha256: None,
        scopes: Scopes::All(AllScopes::All),
        backend_roles: vec![],
        via_api_token: None,
        created_at: 0,
        expires_at: None,
        revoked_at: None,
        revoked_by: None,
    })?;

    let context = || JobContext {
        job_id: id.clone(),
        job_name: "bench".into(),
        params: "{}".into(),
        scheduled_at: 0,
        attempt: 1,
    };
    let bare = async || extension.run_job("admin".into(), Session::default(), context()).await;
    let scheduled = async || scheduler.run_now(&id).await;
    // Both must really run before they are timed.
    if !matches!(rt.block_on(bare())?, JobOutcome::Success(_)) || !rt.block_on(scheduled())? {
        return Err("the bench job did not run".into());
    }
    let after = scheduler.jobs().get(&id)?.ok_or("job vanished")?.0;
    if after.last_run.as_ref().map(|r| r.message.as_str()) != Some("nothing to do, attempt 1") {
        return Err(format!("the scheduled run did not succeed: {:?}", after.last_run).into());
    }

    let mut group = c.benchmark_group("jobs/run");
    group.bench_function("bare", |b| {
        b.iter(|| match rt.block_on(bare()) {
            Ok(JobOutcome::Success(message)) => message,
            other => panic!("the bare run did not succeed: {other:?}"),
        })
    });
    // The consent check alone (one GET of the record): its cost per run,
    // beside the run it guards.
    group.bench_function("consent_check", |b| {
        b.iter(|| match scheduler.live_consent(IdentitySource::Internal, "admin", "bench") {
            Ok(consent) => consent,
            Err(denial) => panic!("no consent: {denial:?}"),
        })
    });
    group.bench_function("scheduled", |b| {
        b.iter(|| match rt.block_on(scheduled()) {
            Ok(true) => true,
            Ok(false) => panic!("run_now refused the run"),
            Err(e) => panic!("run_now failed: {e}"),
        })
    });
    group.finish();
    let after = scheduler.jobs().get(&id)?.ok_or("job vanished")?.0;
    if after.last_run.map(|r| r.message) != Some("nothing to do, attempt 1".into()) {
        return Err("the last timed scheduled run did not succeed".into());
    }

    let mut group = c.benchmark_group("jobs/tick_scan");
    let mut stored = 1;
    for n in [100usize, 1_000, 10_000, 100_000] {
        while stored < n {
            let user = format!("u{}", stored / 100);
            scheduler.jobs().register(registration(&user, &format!("j{stored}")), 0)?;
            stored += 1;
        }
        // Steady state: nothing due yet (each job's first run is an hour on).
        group.bench_with_input(BenchmarkId::new("none_due", n), &n, |b, _| {
            b.iter(|| scheduler.jobs().due(1).map(|d| d.len()))
        });
        group.bench_with_input(BenchmarkId::new("all_due", n), &n, |b, _| {
            b.iter(|| scheduler.jobs().due(u64::MAX).map(|d| d.len()))
        });
    }
    group.finish();
    Ok(())
}

criterion_group!(benches, bench);
criterion_main!(benches);
