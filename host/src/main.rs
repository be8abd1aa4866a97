//! The `warden` binary: `warden serve` runs the host; `warden inspect`
//! shows what a component needs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
mod manage;

use warden_host::audit::{AuditLog, Category};
use warden_host::capability::Capability;
use warden_host::cluster::embedded::Embedded;
use warden_host::cluster::gateway::ClusterGateway;
use warden_host::registry::Registry;
use warden_host::runtime::session::Sessions;
use warden_host::runtime::{Runtime, RuntimeConfig};
use warden_host::scheduler::jobs::JobStore;
use warden_host::scheduler::{Scheduler, SchedulerConfig};
use warden_host::security::api_tokens::ApiTokens;
use warden_host::security::obo::TokenService;
use warden_host::security::{Bootstrap, Security};
use warden_host::server::{self, AppState};
use warden_host::store::Store;

#[derive(Debug, Parser)]
#[command(name = "warden", version, about = "Runs untrusted extensions as sandboxed WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the extensions in a directory over HTTP.
    Serve {
        /// Address to listen on (port 0 picks a free port; the log says which).
        #[arg(long, default_value = "127.0.0.1:9200", env = "WARDEN_LISTEN")]
        listen: SocketAddr,
        /// Where Warden keeps its state (compile cache, extension files).
        #[arg(long, default_value = "./data", env = "WARDEN_DATA_DIR")]
        data_dir: PathBuf,
        /// One subdirectory per extension, each with extension.toml and its component.
        #[arg(long, default_value = "./extensions", env = "WARDEN_EXTENSIONS_DIR")]
        extensions_dir: PathBuf,
        /// An OpenSearch security config directory (internal_users.yml,
        /// roles.yml, roles_mapping.yml, action_groups.yml) to import on first
        /// start; later starts use the copy kept in the data directory.
        #[arg(long, env = "WARDEN_SECURITY_CONFIG")]
        security_config: Option<PathBuf>,
        /// The cluster name: the `iss` of the OBO tokens this node mints.
        #[arg(long, default_value = "warden", env = "WARDEN_CLUSTER_NAME")]
        cluster_name: String,
        /// Sandboxed instances alive at once across all extensions (the
        /// pool). Each extension reserves `max_concurrency` of them at load;
        /// one that does not fit is refused, so raise this for many extensions.
        #[arg(long, default_value_t = 1_000, env = "WARDEN_MAX_INSTANCES", value_parser = clap::value_parser!(u32).range(1..=100_000))]
        max_instances: u32,
        #[command(flatten)]
        limits: ConnectionLimits,
    },
    /// Import or export the whole security configuration of a running server.
    Security {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: SecurityCommand,
    },
    /// Manage internal users of a running server.
    User {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// List and manage scheduled jobs of a running server (your own; all
    /// of them with `restapi:admin/jobs`).
    Jobs {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Set a user's password in the data directory of a stopped server:
    /// the way back in after losing the admin password. The new password
    /// comes from WARDEN_NEW_PASSWORD or a prompt.
    ResetPassword {
        user: String,
        #[arg(long, default_value = "./data", env = "WARDEN_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Print a bcrypt hash (for internal_users.yml) of a password read from stdin.
    Hash,
    /// Show what a component imports (grouped by the capability each import
    /// needs) and exports.
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// How long a client may take and how many connections it may hold.
#[derive(Debug, clap::Args)]
struct ConnectionLimits {
    /// A request's head must arrive within this; an idle keep-alive
    /// connection is closed after it too.
    #[arg(long, default_value_t = 10_000, env = "WARDEN_HEADER_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_ms: u64,
    /// Connections open at once; more are closed as soon as accepted.
    #[arg(long, default_value_t = 1024, env = "WARDEN_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Connections open at once from one client address (raise it to
    /// `--max-connections` behind a reverse proxy).
    #[arg(long, default_value_t = 256, env = "WARDEN_MAX_CONNECTIONS_PER_ADDRESS", value_parser = clap::value_parser!(u64).range(1..))]
    max_connections_per_address: u64,
    /// An authenticated request's body must arrive within this (408 and the
    /// connection closed otherwise).
    #[arg(long, default_value_t = 60_000, env = "WARDEN_BODY_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout_ms: u64,
    /// A write to a client that makes no progress for this long (a client
    /// that does not read its answers) closes the connection.
    #[arg(long, default_value_t = 30_000, env = "WARDEN_WRITE_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    write_timeout_ms: u64,
}

impl ConnectionLimits {
    fn serve_limits(&self) -> server::ServeLimits {
        server::ServeLimits {
            header_read_timeout: std::time::Duration::from_millis(self.header_timeout_ms),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_connections_per_address: usize::try_from(self.max_connections_per_address)
                .unwrap_or(usize::MAX),
            body_timeout: std::time::Duration::from_millis(self.body_timeout_ms),
            write_timeout: std::time::Duration::from_millis(self.write_timeout_ms),
        }
    }
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The server to manage.
    #[arg(long, default_value = "http://127.0.0.1:9200", env = "WARDEN_URL", global = true)]
    url: String,
    /// Who to log in as (the password comes from WARDEN_PASSWORD or a prompt).
    #[arg(long, default_value = "admin", env = "WARDEN_USER", global = true)]
    user: String,
}

#[derive(Debug, Subcommand)]
enum SecurityCommand {
    /// Replace the configuration with an OpenSearch security directory.
    Import { dir: PathBuf },
    /// Write the configuration as OpenSearch security files.
    Export { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// One line per job: id, extension, name, user, schedule, state, last run.
    List {
        #[arg(long)]
        extension: Option<String>,
        /// Only the jobs that run as this user.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Everything about one job, as JSON.
    Show { id: String },
    /// Resume a disabled or suspended job (its owner is checked again).
    Enable { id: String },
    /// Pause a job.
    Disable { id: String },
    /// Run a job at the next tick.
    Run { id: String },
    /// Remove a job.
    Rm { id: String },
    /// Give a job to another user (needs `restapi:admin/jobs`; audited).
    Owner {
        id: String,
        /// The new owner (named apart from the global `--user`, who logs in).
        #[arg(value_name = "USER")]
        new_owner: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (the password is read from WARDEN_NEW_PASSWORD or asked).
    Add {
        name: String,
        #[arg(long = "backend-role")]
        backend_roles: Vec<String>,
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Set a user's password.
    Passwd { name: String },
    /// Remove a user.
    Rm { name: String },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve {
            listen,
            data_dir,
            extensions_dir,
            security_config,
            cluster_name,
            max_instances,
            limits,
        } => {
            let runtime = RuntimeConfig {
                cache_dir: Some(data_dir.join("cache")),
                max_instances,
                ..RuntimeConfig::default()
            };
            serve(
                listen,
                data_dir,
                extensions_dir,
                security_config,
                cluster_name,
                runtime,
                limits.serve_limits(),
            )
        }
        Command::Inspect { file, json } => inspect(&file, json),
        Command::Security { server, command } => {
            manage::Client::connect(&server.url, &server.user).and_then(|client| match command {
                SecurityCommand::Import { dir } => manage::security_import(&client, &dir),
                SecurityCommand::Export { dir } => manage::security_export(&client, &dir),
            })
        }
        Command::User { server, command } => {
            manage::Client::connect(&server.url, &server.user).and_then(|client| match command {
                UserCommand::Add { name, backend_roles, roles } => {
                    manage::user_add(&client, &name, &backend_roles, &roles)
                }
                UserCommand::Passwd { name } => manage::user_passwd(&client, &name),
                UserCommand::Rm { name } => manage::user_rm(&client, &name),
            })
        }
        Command::Jobs { server, command } => {
            use manage::JobAction;
            manage::Client::connect(&server.url, &server.user).and_then(|client| match command {
                JobsCommand::List { extension, owner } => {
                    manage::jobs_list(&client, extension.as_deref(), owner.as_deref())
                }
                JobsCommand::Show { id } => manage::jobs_act(&client, &id, JobAction::Show),
                JobsCommand::Enable { id } => manage::jobs_act(&client, &id, JobAction::Enable),
                JobsCommand::Disable { id } => manage::jobs_act(&client, &id, JobAction::Disable),
                JobsCommand::Run { id } => manage::jobs_act(&client, &id, JobAction::Run),
                JobsCommand::Rm { id } => manage::jobs_act(&client, &id, JobAction::Remove),
                JobsCommand::Owner { id, new_owner } => manage::jobs_owner(&client, &id, &new_owner),
            })
        }
        Command::ResetPassword { user, data_dir } => reset_password(&user, &data_dir),
        Command::Hash => hash(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message chain, not a backtrace: these are operator errors.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `WARDEN_LOG` filters, `WARDEN_LOG_FORMAT` is `text` (default) or `json`.
/// Every field and message is escaped (see [`log_escape`]): a user name or a
/// guest's log message holding a newline or a terminal escape cannot forge
/// or hide a line.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("WARDEN_LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"));
    if json {
        // JSON string escaping already covers every control character.
        builder.json().init();
    } else {
        builder.fmt_fields(log_escape::EscapedFields).with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Text-format fields with control characters escaped.
mod log_escape {
    use std::fmt::Write as _;

    use tracing::field::{Field, Visit};
    use tracing_subscriber::field::RecordFields;
    use tracing_subscriber::fmt::FormatFields;
    use tracing_subscriber::fmt::format::Writer;

    /// Formats fields as the default text format does (`message` bare, then
    /// `name=value`), with `\n`, `\r`, ESC and every other control character
    /// (and U+2028/U+2029) written as escapes.
    #[derive(Debug)]
    pub struct EscapedFields;

    impl<'w> FormatFields<'w> for EscapedFields {
        fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
            let mut visitor = Visitor { writer, first: true, result: Ok(()) };
            fields.record(&mut visitor);
            visitor.result
        }
    }

    struct Visitor<'w> {
        writer: Writer<'w>,
        first: bool,
        result: std::fmt::Result,
    }

    impl Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if self.result.is_err() {
                return;
            }
            let raw = format!("{value:?}");
            let text = escape(&raw);
            let separator = if self.first { "" } else { " " };
            self.first = false;
            let name = field.name();
            self.result = if name == "message" {
                write!(self.writer, "{separator}{text}")
            } else {
                write!(self.writer, "{separator}{}={text}", name.strip_prefix("r#").unwrap_or(name))
            };
        }
    }

    pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
        let unsafe_char = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
        if !text.chars().any(unsafe_char) {
            return std::borrow::Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if unsafe_char(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        std::borrow::Cow::Owned(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn control_characters_are_escaped() {
            assert_eq!(super::escape("plain text é"), "plain text é");
            assert_eq!(
                super::escape("x\nINFO forged\r\u{1b}[31m\u{2028}"),
                "x\\nINFO forged\\r\\u{1b}[31m\\u{2028}"
            );
        }
    }
}

fn reset_password(user: &str, data_dir: &std::path::Path) -> anyhow::Result<()> {
    use warden_host::security::{password, service_accounts};
    let path = data_dir.join("store").join("warden.redb");
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist: {} is not the data directory of a Warden server",
            path.display(),
            data_dir.display()
        );
    }
    // redb locks the file: this fails while a server has the store open.
    let store = Arc::new(Store::open(&path).with_context(|| {
        format!("cannot open the store (stop the server using {} first)", data_dir.display())
    })?);
    let (security, _) =
        Security::bootstrap(store.clone(), None, None).context("cannot load the security configuration")?;
    // The new password revokes the user's OBO and API tokens (whoever held
    // the old credentials may hold tokens made with them).
    let tokens = TokenService::load_or_create(&store, "warden").context("cannot load the token service")?;
    let security = security.with_obo(Arc::new(tokens));
    if service_accounts::is_service_account(user) {
        anyhow::bail!("`{user}` is a service account: it has no password");
    }
    if !security.state().config.internal_users.contains_key(user) {
        anyhow::bail!("no internal user `{user}` in {}", data_dir.display());
    }
    let new = manage::new_password(user)?;
    password::check_strength(user, &new)?;
    let hash = password::hash(&new)?;
    let disabled = security.update(|config| {
        let record = config.internal_users.get_mut(user).context("the user disappeared")?;
        record.hash = Some(hash);
        Ok::<_, anyhow::Error>(record.disabled)
    })?;
    println!("password of `{user}` reset; tokens issued before are revoked");
    if disabled {
        println!("note: `{user}` is disabled; enable it with the security API before logging in");
    }
    Ok(())
}

/// Each extension granted `cluster` gets its service account; one without a
/// policy role is told about at start, not at its first denied call.
fn prepare_extension_identities(security: &Security, registry: &Registry) -> anyhow::Result<()> {
    let clustered: Vec<&str> = registry
        .extensions()
        .filter(|e| e.manifest.capabilities.contains(&Capability::Cluster))
        .map(|e| e.id())
        .collect();
    warden_host::runtime::capabilities::cluster::prepare(security, &clustered)
        .context("cannot create the extensions' service accounts")
}

fn serve(
    listen: SocketAddr,
    data_dir: PathBuf,
    extensions_dir: PathBuf,
    security_config: Option<PathBuf>,
    cluster_name: String,
    runtime: RuntimeConfig,
    limits: server::ServeLimits,
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
    let runtime = Runtime::new(runtime)?;
    let registry = Registry::load_dir(&runtime, &extensions_dir, &data_dir);
    prepare_extension_identities(&security, &registry)?;
    for warning in security.shared_name_warnings() {
        tracing::warn!("{warning}");
    }
    let audit =
        AuditLog::open_with(&data_dir.join("audit"), disabled_audit_categories()?, audit_settings()?)?;
    let tokens = Arc::new(TokenService::load_or_create(&store, &cluster_name)?);
    let api_tokens = Arc::new(ApiTokens::new(store.clone()));
    let security = Arc::new(security.with_obo(tokens.clone()).with_api_tokens(api_tokens));
    let audit = Arc::new(audit);
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
        scheduler_config()?,
    ));
    let state = Arc::new(AppState {
        registry,
        security,
        audit,
        cluster: Some(gateway),
        scheduler: Some(scheduler.clone()),
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
            extensions = state.registry.extensions().count(),
            failed = state.registry.failed().len(),
            "warden listening on http://{local}"
        );
        let dispatcher = scheduler.spawn();
        server::serve(listener, state, shutdown_signal(), limits).await.context("server failed")?;
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

/// `WARDEN_SCHEDULER_TICK_MS` (how often due jobs are looked for),
/// `WARDEN_JOB_RETRY_DELAY_MS` (a failed run's retry waits this × attempt)
/// and `WARDEN_JOB_TOKEN_SECS` (a run's token lifetime; renewed at half-life).
fn scheduler_config() -> anyhow::Result<SchedulerConfig> {
    // A positive whole number of `unit`s (1 for milliseconds, 1000 for seconds).
    let duration = |name: &str, unit: u64, unit_name: &str| -> anyhow::Result<Option<std::time::Duration>> {
        let Ok(text) = std::env::var(name) else { return Ok(None) };
        let n: u64 = text
            .trim()
            .parse()
            .with_context(|| format!("{name}: `{text}` is not a number of {unit_name}"))?;
        if n == 0 {
            anyhow::bail!("{name}: must be at least 1 ({unit_name})");
        }
        Ok(Some(std::time::Duration::from_millis(n.saturating_mul(unit))))
    };
    let defaults = SchedulerConfig::default();
    Ok(SchedulerConfig {
        tick: duration("WARDEN_SCHEDULER_TICK_MS", 1, "milliseconds")?.unwrap_or(defaults.tick),
        retry_delay: duration("WARDEN_JOB_RETRY_DELAY_MS", 1, "milliseconds")?
            .unwrap_or(defaults.retry_delay),
        token_lifetime: duration("WARDEN_JOB_TOKEN_SECS", 1000, "seconds")?
            .unwrap_or(defaults.token_lifetime),
        ..defaults
    })
}

/// `WARDEN_AUDIT_MAX_FILE_BYTES` (rotate past it), `WARDEN_AUDIT_MAX_FILES`
/// (rotated files kept; 0 keeps none), `WARDEN_AUDIT_MAX_FIELD_BYTES` (each
/// field cut to it), `WARDEN_AUDIT_FAILED_LOGIN_BURST` and
/// `WARDEN_AUDIT_FAILED_LOGIN_WINDOW_MS` (failed logins written one by one
/// per address and window; the rest are summarised with a count).
fn audit_settings() -> anyhow::Result<warden_host::audit::AuditSettings> {
    fn number(name: &str, min: u64) -> anyhow::Result<Option<u64>> {
        let Ok(text) = std::env::var(name) else { return Ok(None) };
        let n: u64 =
            text.trim().parse().with_context(|| format!("{name}: `{text}` is not a whole number"))?;
        if n < min {
            anyhow::bail!("{name}: must be at least {min}");
        }
        Ok(Some(n))
    }
    let defaults = warden_host::audit::AuditSettings::default();
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Ok(warden_host::audit::AuditSettings {
        max_file_bytes: number("WARDEN_AUDIT_MAX_FILE_BYTES", 4096)?.unwrap_or(defaults.max_file_bytes),
        max_files: number("WARDEN_AUDIT_MAX_FILES", 0)?.map_or(defaults.max_files, size),
        max_field_bytes: number("WARDEN_AUDIT_MAX_FIELD_BYTES", 64)?.map_or(defaults.max_field_bytes, size),
        failed_login_burst: number("WARDEN_AUDIT_FAILED_LOGIN_BURST", 0)?
            .map_or(defaults.failed_login_burst, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        failed_login_window: number("WARDEN_AUDIT_FAILED_LOGIN_WINDOW_MS", 1)?
            .map_or(defaults.failed_login_window, std::time::Duration::from_millis),
    })
}

/// `WARDEN_AUDIT_DISABLED_CATEGORIES` (comma-separated; empty enables all);
/// by default AUTHENTICATED and GRANTED_PRIVILEGES are off, as in OpenSearch.
fn disabled_audit_categories() -> anyhow::Result<std::collections::BTreeSet<Category>> {
    let Ok(list) = std::env::var("WARDEN_AUDIT_DISABLED_CATEGORIES") else {
        return Ok([Category::Authenticated, Category::GrantedPrivileges].into());
    };
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            Category::parse(s)
                .ok_or_else(|| anyhow::anyhow!("WARDEN_AUDIT_DISABLED_CATEGORIES: unknown category `{s}`"))
        })
        .collect()
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

fn hash() -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("cannot read the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password on stdin");
    }
    println!("{}", warden_host::security::password::hash(password)?);
    Ok(())
}

fn inspect(file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    // A small engine: inspection instantiates nothing.
    let runtime = Runtime::new(RuntimeConfig { max_instances: 1, ..RuntimeConfig::default() })?;
    let report = warden_host::inspect::inspect(&runtime, file)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}
