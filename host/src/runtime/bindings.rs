//! Host-side bindings generated from `wit/` (the `warden:extension` package).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "warden:extension/extension",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::exports::warden::extension::{http_handler, job_runner};
pub use self::warden::extension::{cluster, log, scheduler, types};
