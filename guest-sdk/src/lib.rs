//! `warden-guest`: write Warden extensions in Rust.
//!
//! An extension is a WebAssembly component that Warden runs in a sandbox, one
//! fresh instance per request or job run. It implements [`Extension`] and
//! exports it with [`export_extension!`]; everything it does outside its own
//! memory goes through the host: [`log`], [`cluster`] and [`scheduler`]. Each
//! of those (except `log`) is a capability the operator must grant in the
//! extension's `extension.toml`.
//!
//! ```no_run
//! use warden_guest::http::{Request, Response};
//! use warden_guest::{Extension, export_extension, log};
//!
//! struct Hello;
//!
//! impl Extension for Hello {
//!     fn handle(request: Request) -> Response {
//!         match request.path_segments().as_slice() {
//!             ["greet", name] => {
//!                 log::info(&format!("greeting {name}"));
//!                 Response::json(200, &serde_json::json!({ "greeting": format!("Hello, {name}!") }))
//!             }
//!             _ => Response::not_found(),
//!         }
//!     }
//! }
//!
//! export_extension!(Hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2`: the output
//! in `target/wasm32-wasip2/release/*.wasm` is a component, ready for
//! `warden inspect` and for an extension directory.
//!
//! An extension that only serves REST never writes job code: [`Extension::run_job`]
//! has a default that reports the job as unsupported.

pub mod cluster;
pub mod http;
pub mod job;
pub mod log;
pub mod scheduler;

/// The raw bindings generated from the `warden:extension` WIT package.
/// Prefer the typed modules of this crate; these are here for what they do
/// not cover.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "warden:extension/extension",
        pub_export_macro: true,
        export_macro_name: "__export_warden_world",
        default_bindings_module: "warden_guest::bindings",
        generate_all,
    });
}

pub use bindings::warden::extension::types::Error;

// wit-bindgen already implements `Display` and `std::error::Error` for it.
impl Error {
    /// The variant's name as in the WIT: `denied`, `not-found`, `invalid`,
    /// `conflict`, `unavailable` or `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Denied(_) => "denied",
            Error::NotFound(_) => "not-found",
            Error::Invalid(_) => "invalid",
            Error::Conflict(_) => "conflict",
            Error::Unavailable(_) => "unavailable",
            Error::Internal(_) => "internal",
        }
    }

    /// The host's explanation.
    pub fn message(&self) -> &str {
        match self {
            Error::Denied(m)
            | Error::NotFound(m)
            | Error::Invalid(m)
            | Error::Conflict(m)
            | Error::Unavailable(m)
            | Error::Internal(m) => m,
        }
    }
}

/// What an extension implements. One fresh instance serves each call, so
/// state kept in statics does not survive between requests: keep state in
/// the cluster.
pub trait Extension {
    /// Serves one REST request to `/_extensions/<id>/...`.
    fn handle(request: http::Request) -> http::Response;

    /// Runs one scheduled job. The default reports that this extension runs
    /// no jobs, so REST-only extensions need not write any job code.
    fn run_job(context: job::JobContext) -> job::Outcome {
        job::Outcome::Failure(format!(
            "this extension does not run jobs (job {} was scheduled for it)",
            context.job_name
        ))
    }
}

/// Exports a type implementing [`Extension`] as this component's handler and
/// job runner. Use it once, at the crate root of a `cdylib` crate.
#[macro_export]
macro_rules! export_extension {
    ($ty:ty) => {
        const _: () = {
            struct WardenExports;

            impl $crate::bindings::exports::warden::extension::http_handler::Guest for WardenExports {
                fn handle(
                    request: $crate::bindings::exports::warden::extension::http_handler::Request,
                ) -> $crate::bindings::exports::warden::extension::http_handler::Response {
                    <$ty as $crate::Extension>::handle(request.into()).into()
                }
            }

            impl $crate::bindings::exports::warden::extension::job_runner::Guest for WardenExports {
                fn run(
                    context: $crate::bindings::exports::warden::extension::job_runner::JobContext,
                ) -> $crate::bindings::exports::warden::extension::job_runner::Outcome {
                    <$ty as $crate::Extension>::run_job(context)
                }
            }

    $crate::bindings::__export_warden_world!(WardenExports with_types_in $crate::bindings);
        };
    };
}
