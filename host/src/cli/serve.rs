//! `warden serve`: wires the host together (store, security, runtime and
//! registry — the extensions directory's and the installed ones from the
//! store —, audit log, token services, cluster gateway, scheduler, the
//! extension lifecycle) and
//! serves the REST API until SIGINT or SIGTERM; at shutdown the dispatcher
//! stops and job runs under way get 10 s to finish.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use warden_host::api::{self, AppState, ServeLimits};
use warden_host::audit::{AuditLog, Category, Event};
use warden_host::capability::Capability;
use warden_host::cluster::embedded::Embedded;
use warden_host::cluster::gateway::ClusterGateway;
use warden_host::config;
use warden_host::extensions::installed::{InstallState, InstalledStore, digest};
use warden_host::extensions::lifecycle::{self, Installation, Lifecycle};
use warden_host::manifest::{MANIFEST_FILE, Manifest};
use warden_host::registry::Registry;
use warden_host::runtime::session::Sessions;
use warden_host::runtime::{Runtime, RuntimeConfig};
use warden_host::scheduler::Scheduler;
use warden_host::scheduler::jobs::JobStore;
use warden_host::security::api_tokens::ApiTokens;
use warden_host::security::consents::Consents;
use warden_host::security::obo::TokenService;
use warden_host::security::{Bootstrap, Security};
use warden_host::store::Store;

/// Each extension granted `cluster` gets its service account; one without a
/// policy role is told about at start, not at its first denied call.
fn prepare_extension_identities(security: &Security, registry: &Registry) -> anyhow::Result<()> {
    let extensions = registry.extensions();
    let clustered: Vec<&str> = extensions
        .iter()
        .filter(|e| e.manifest.capabilities.contains(&Capability::Cluster))
        .map(|e| e.id())
        .collect();
    warden_host::runtime::capabilities::cluster::prepare(security, &clustered)
        .context("cannot create the extensions' service accounts")
}

/// Who `--dev-extensions` installs and approves as, in records and audit.
const DEV_ACTOR: &str = "dev-extensions";

/// `--dev-extensions <dir>`: every extension directory there is installed
/// and approved at start without review — for development, never the
/// default, and said loudly. An extension already installed from the same
/// manifest and component is left as it is; a changed one is removed and
/// installed again (its jobs are suspended by the removal, as always). One
/// that fails is logged and skipped, like a failed directory extension.
fn install_dev_extensions(lifecycle: &Lifecycle, audit: &AuditLog, dir: &Path) -> anyhow::Result<()> {
    tracing::warn!(
        "DEVELOPMENT MODE: --dev-extensions installs and approves every extension in {} WITHOUT REVIEW",
        dir.display()
    );
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read --dev-extensions directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    for extension_dir in dirs {
        if let Err(e) = install_dev_extension(lifecycle, audit, &extension_dir) {
            tracing::error!(dir = %extension_dir.display(), "--dev-extensions: not installed: {e:#}");
        }
    }
    Ok(())
}

/// A lifecycle change made by `--dev-extensions`, for the audit log.
fn dev_event(category: Category, id: &str) -> Event {
    Event {
        user: Some(DEV_ACTOR.to_owned()),
        extension: Some(id.to_owned()),
        reason: Some("--dev-extensions: without review".to_owned()),
        ..Event::new(category, "dev-extensions")
    }
}

fn install_dev_extension(lifecycle: &Lifecycle, audit: &AuditLog, dir: &Path) -> anyhow::Result<()> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = Manifest::parse(&text, dir, &manifest_path)?;
    let component = std::fs::read(&manifest.component)
        .with_context(|| format!("cannot read {}", manifest.component.display()))?;
    let id = manifest.id;
    if let Some(record) = lifecycle.find(&id)? {
        // What an operator installed through the API is theirs: development
        // mode never approves, removes or replaces it.
        if record.installed_by != DEV_ACTOR {
            anyhow::bail!(
                "`{id}` was installed by `{}` through the API; --dev-extensions leaves it as it is",
                record.installed_by
            );
        }
        if record.manifest == text && record.component_sha256 == digest(&component) {
            if record.state == InstallState::Pending {
                lifecycle.approve(DEV_ACTOR, &id, None)?;
                audit.record(dev_event(Category::ExtensionApprove, &id));
            }
            return Ok(());
        }
    }
    // A changed one is upgraded (its jobs and data stay), approved at once
    // when the new version widens what it is granted.
    let installation = lifecycle.install(DEV_ACTOR, &text, &component)?;
    let category = match installation {
        Installation::New(_) => Category::ExtensionInstall,
        Installation::Upgraded { .. } | Installation::Waiting { .. } => Category::ExtensionUpgrade,
    };
    audit.record(dev_event(category, &id));
    if !matches!(installation, Installation::Upgraded { .. }) {
        lifecycle.approve(DEV_ACTOR, &id, None)?;
        audit.record(dev_event(Category::ExtensionApprove, &id));
    }
    tracing::warn!(extension = id, "--dev-extensions: installed and approved without review");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    listen: SocketAddr,
    data_dir: PathBuf,
    extensions_dir: PathBuf,
    dev_extensions: Option<PathBuf>,
    security_config: Option<PathBuf>,
    cluster_name: String,
    runtime: RuntimeConfig,
    limits: ServeLimits,
) -> anyhow::Result<()> {
    // Everything this process creates (store, audit log, cache, extensions'
    // files) is for its own user only: files 0600, directories 0700.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    // A data directory made by an earlier version (0755) is closed too.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make data directory {} private (0700)", data_dir.display()))?;
    }
    let initial_password = std::env::var("WARDEN_INITIAL_ADMIN_PASSWORD").ok();
    let store = Arc::new(Store::open(&data_dir.join("store").join("warden.redb"))?);
    let (security, bootstrap) =
        Security::bootstrap(store.clone(), security_config.as_deref(), initial_password.as_deref())
            .context("cannot load the security configuration")?;
    match bootstrap {
        Bootstrap::Existing => tracing::info!("security configuration loaded from the store"),
        Bootstrap::Initialised => tracing::info!("security configuration initialised in the store"),
        Bootstrap::GeneratedAdminPassword(password) => {
            // Printed once, to the terminal only; never logged again.
            eprintln!(
                "\n  First start: the password of user `admin` is\n\n      {password}\n\n  \
                 It is shown only this once. Change it with the security API.\n"
            );
        }
    }
    let runtime = Arc::new(Runtime::new(runtime)?);
    // Installed extensions (approved in an earlier run) join the directory's;
    // their ids are theirs.
    let installed = InstalledStore::new(store.clone());
    let installed_ids = installed
        .list()
        .context("cannot read the installed extensions")?
        .into_iter()
        .map(|record| record.id)
        .collect();
    let registry = Registry::load_dir(&runtime, &extensions_dir, &data_dir, &installed_ids);
    lifecycle::load_installed(&installed, &runtime, &registry, &data_dir);
    prepare_extension_identities(&security, &registry)?;
    for warning in security.shared_name_warnings() {
        tracing::warn!("{warning}");
    }
    let audit = AuditLog::open_with(
        &data_dir.join("audit"),
        config::disabled_audit_categories(config::from_env)?,
        config::audit_settings(config::from_env)?,
    )?;
    let tokens = Arc::new(TokenService::load_or_create(&store, &cluster_name)?);
    let api_tokens = Arc::new(ApiTokens::new(store.clone()));
    let consents = Arc::new(
        Consents::new(store.clone()).with_external_max_age(config::consent_max_age_ms(config::from_env)?),
    );
    let audit = Arc::new(audit);
    let security = Arc::new(
        security
            .with_obo(tokens.clone())
            .with_api_tokens(api_tokens)
            .with_consents(consents)
            .with_revoke_on(config::revoke_tokens_on(config::from_env)?)
            .with_audit(audit.clone()),
    );
    let backend = Embedded::new(store.clone(), &cluster_name).context("cannot open the cluster store")?;
    let gateway =
        Arc::new(ClusterGateway::new(Box::new(backend), tokens.clone(), security.clone(), audit.clone()));
    let sessions = Arc::new(Sessions::new(gateway.clone(), tokens));
    let registry = Arc::new(registry);
    let jobs = JobStore::new(store.clone());
    // This process alone has the embedded store open: leases left in it
    // are from runs the last process never finished.
    match jobs.release_all_leases().context("cannot read the job store")? {
        0 => {}
        n => tracing::info!(leases = n, "released job leases left by the previous process"),
    }
    let scheduled = jobs.rebuild_due_index().context("cannot index the jobs")?;
    tracing::info!(scheduled, "job store ready");
    let scheduler = Arc::new(Scheduler::new(
        jobs,
        security.clone(),
        sessions.clone(),
        audit.clone(),
        registry.clone(),
        config::scheduler_config(config::from_env)?,
    ));
    let lifecycle = Arc::new(
        Lifecycle::new(
            installed,
            registry.clone(),
            runtime.clone(),
            security.clone(),
            Some(scheduler.clone()),
            data_dir.clone(),
        )
        .with_cluster(gateway.clone()),
    );
    if let Some(dir) = &dev_extensions {
        install_dev_extensions(&lifecycle, &audit, dir)?;
    }
    let state = Arc::new(AppState {
        registry,
        security,
        audit,
        cluster: Some(gateway),
        scheduler: Some(scheduler.clone()),
        lifecycle: Some(lifecycle),
        sessions,
        started: Instant::now(),
        body_timeout: limits.body_timeout,
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr().context("cannot read the listening address")?;
        tracing::info!(
            extensions = state.registry.extensions().len(),
            failed = state.registry.failed().len(),
            "warden listening on http://{local}"
        );
        let dispatcher = scheduler.spawn();
        api::serve(listener, state, shutdown_signal(), limits).await.context("server failed")?;
        dispatcher.abort();
        let unfinished = scheduler.drain(std::time::Duration::from_secs(10)).await;
        if unfinished > 0 {
            tracing::warn!(unfinished, "stopping with job runs unfinished; they run again after the restart");
        }
        tracing::info!("warden stopped");
        // Keep the engine (and its epoch ticker) alive until serving ends.
        drop(runtime);
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for ctrl-c: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
