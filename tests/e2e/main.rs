//! Warden's end-to-end tests: one test binary, one module per area, as
//! wasmtime's tests/all/main.rs. Every test runs the real `warden` binary
//! (or the library, for `authorization`) on its own loopback port and its
//! own temporary directory, so the tests of all areas share this process
//! and run on parallel threads; nothing here may rely on process-wide state
//! (no `set_var`, no current directory, no shared server).
//!
//! One binary links once instead of once per area. Run one area with its
//! module path as the filter: `cargo test -p warden-host --test e2e gates::`
//! (or `attacks::sandbox::` for one class of attack).
//!
//! | module | what |
//! |---|---|
//! | `serve` | `warden serve`: the example and hostile guests (each must have a test here), backpressure, deadlines, the compile cache |
//! | `security` | authentication (Basic, JWT, anonymous), uniform 401s, the admin bootstrap, audit categories |
//! | `security_api` | the security REST API and the audit log |
//! | `authorization` | the OpenSearch authorization semantics, table-driven, through the library |
//! | `api_tokens` | API tokens limited by their creator |
//! | `obo` | user-minted on-behalf-of tokens |
//! | `revocation` | tokens die with the password, the account and (when configured) the roles they came from |
//! | `cluster_rest` | users' own calls on OpenSearch's paths; OBO revocations |
//! | `conformance` | OpenSearch's own YAML REST tests (`tests/conformance/`), with the list of those not passing yet |
//! | `gates` | extensions' cluster calls through the service and user gates |
//! | `services_mappings` | role mappings that widen an extension's policy for some users (seed 003) |
//! | `jobs` | scheduled jobs through a real guest |
//! | `consents` | users' consent to background work: scopes as a gate at every run, revocation, refusals |
//! | `lifecycle` | installed extensions: install, approve, restart, remove, refusals |
//! | `upgrade` | installing a new version of an installed extension: delta, narrowing at once, widening on approval, the swap |
//! | `lifecycle_check` | the missing-permission report (`_check`, `warden ext check`) |
//! | `console` | the browser console: sessions, cookie and CSRF rules over HTTP; the pages in headless Chromium (`console::browser`, chromedriver from scripts/setup.sh) |
//! | `metrics` | `GET /_warden/metrics`: counters after known traffic, parsed as Prometheus parses them; who may scrape |
//! | `cli` | the management CLI against a running server |
//! | `inspect` | `warden inspect` |
//! | `isolation` | a fresh instance per request: nothing one request plants is seen by the next, limits bound each request alone |
//! | `crash` | faults with nothing lost: `kill -9` during writes, security config, tokens, extension installs; corrupted or foreign compile-cache entries; a torn audit log tail; a full disk |
//! | `python_client` | the real `opensearch-py` client |
//! | `attacks` | the attack harness, a module per class of hole |
//! | `support` | starting and talking to a server; the helpers the areas share |

mod api_tokens;
mod attacks;
mod authorization;
mod cli;
mod cluster_rest;
mod conformance;
mod consents;
mod console;
mod crash;
mod gates;
mod inspect;
mod isolation;
mod jobs;
mod lifecycle;
mod lifecycle_check;
mod metrics;
mod obo;
mod python_client;
mod revocation;
mod security;
mod security_api;
mod serve;
mod services_mappings;
mod support;
mod upgrade;
