//! The `warden` binary: parses the command line and calls the command's
//! module in `cli/` (`warden serve` runs the host; `warden inspect` shows
//! what a component needs; the rest manage a server).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod cli;

use cli::manage;
use warden_host::api::ServeLimits;
use warden_host::runtime::RuntimeConfig;

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
        /// DEVELOPMENT ONLY: install and approve, without review, every
        /// extension directory found here at start (its roles come from its
        /// manifest). Never the default; logged loudly.
        #[arg(long)]
        dev_extensions: Option<PathBuf>,
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
    /// Consent to an extension running background work for you, list and
    /// revoke consents (everyone's with `restapi:admin/consents`).
    Consent {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Install, approve, list, show and remove extensions of a running
    /// server (needs `restapi:admin/extensions`).
    Ext {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: ExtCommand,
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
    fn serve_limits(&self) -> ServeLimits {
        ServeLimits {
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
    /// A job's last runs, newest first: scheduled time, start, duration,
    /// attempt, outcome, message.
    Runs {
        id: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Give a job to another user (needs `restapi:admin/jobs`; audited).
    Owner {
        id: String,
        /// The new owner (named apart from the global `--user`, who logs in).
        #[arg(value_name = "USER")]
        new_owner: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConsentCommand {
    /// Consent to EXTENSION's background work for you, with scopes (JSON:
    /// cluster_permissions, index_permissions) or with all your permissions.
    Grant {
        extension: String,
        #[arg(long)]
        scopes: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Your consents (everyone's for an admin).
    Ls {
        #[arg(long = "owner")]
        user: Option<String>,
        #[arg(long)]
        extension: Option<String>,
    },
    /// Revoke a consent: the extension's jobs for that user stop.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum ExtCommand {
    /// Install the extension in a directory (extension.toml + its
    /// component): pending until approved. Of an installed id, an upgrade:
    /// the permission delta is shown; a version that only narrows applies
    /// at once, one that widens waits for approval while the old one serves.
    Install {
        dir: PathBuf,
        /// Approve at once, without asking.
        #[arg(long)]
        yes: bool,
    },
    /// What installing the extension in a directory would change against
    /// what is granted now, installing nothing.
    Diff { dir: PathBuf },
    /// Approve a pending extension (it serves from the next request on) or
    /// the upgrade waiting for one.
    Approve {
        id: String,
        /// Only if what waits still has this review digest (`review_digest`
        /// in `warden ext show`): approve what you reviewed, nothing else.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Discard the upgrade waiting for approval (the serving version stays).
    Discard { id: String },
    /// One line per installed extension: id, version, state, digest.
    Ls,
    /// Everything about one installed extension, as JSON.
    Show { id: String },
    /// The missing-permission report: declared actions its policy does not
    /// allow, callers of a route who lack what it does for them.
    Check { id: String },
    /// Remove an installed extension (its jobs are suspended, its data kept).
    Rm {
        id: String,
        /// Also delete its own indices (`.ext-<id>`, `.ext-<id>_*`).
        #[arg(long)]
        purge: bool,
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
    cli::logging::init();
    let result = match cli.command {
        Command::Serve {
            listen,
            data_dir,
            extensions_dir,
            dev_extensions,
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
            cli::serve::run(
                listen,
                data_dir,
                extensions_dir,
                dev_extensions,
                security_config,
                cluster_name,
                runtime,
                limits.serve_limits(),
            )
        }
        Command::Inspect { file, json } => cli::inspect::run(&file, json),
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
                JobsCommand::Runs { id, json } => manage::jobs_runs(&client, &id, json),
            })
        }
        Command::Consent { server, command } => {
            use cli::consent;
            manage::Client::connect(&server.url, &server.user).and_then(|client| match command {
                ConsentCommand::Grant { extension, scopes, all } => {
                    consent::grant(&client, &extension, scopes.as_deref(), all)
                }
                ConsentCommand::Ls { user, extension } => {
                    consent::list(&client, user.as_deref(), extension.as_deref())
                }
                ConsentCommand::Revoke { id } => consent::revoke(&client, &id),
            })
        }
        Command::Ext { server, command } => {
            use cli::ext;
            manage::Client::connect(&server.url, &server.user).and_then(|client| match command {
                ExtCommand::Install { dir, yes } => ext::install(&client, &dir, yes),
                ExtCommand::Diff { dir } => ext::diff(&client, &dir),
                ExtCommand::Approve { id, digest } => ext::approve_reviewed(&client, &id, digest.as_deref()),
                ExtCommand::Discard { id } => ext::discard(&client, &id),
                ExtCommand::Ls => ext::list(&client),
                ExtCommand::Show { id } => ext::show(&client, &id),
                ExtCommand::Check { id } => ext::check(&client, &id),
                ExtCommand::Rm { id, purge } => ext::remove(&client, &id, purge),
            })
        }
        Command::ResetPassword { user, data_dir } => cli::reset_password::run(&user, &data_dir),
        Command::Hash => cli::hash::run(),
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
