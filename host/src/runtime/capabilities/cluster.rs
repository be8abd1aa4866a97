//! `warden:extension/cluster` (grant: `cluster`).
//!
//! Linked for extensions granted `cluster`. Each call is converted from the
//! WIT request to the gateway's domain call ([`GuestCall`]) and goes to the
//! invocation's [`ClusterAccess`] (the host's gateway, or a job run's
//! renewing wrapper of it) together with the invocation's OBO token, which
//! the host minted (`runtime::session`) and the guest never sees; the
//! domain reply or error is converted back here. An invocation without
//! cluster access answers a typed `unavailable`.
//!
//! At load ([`prepare`]): every extension granted `cluster` gets its service
//! account, and an operator is warned about one without a policy role.

use std::sync::Arc;

use wasmtime::component::{HasData, Linker};

use super::{CapView, Covers, Versions, not_granted, to_wit};
use crate::capability::{Capability, ImportClass};
use crate::cluster::Reply;
use crate::cluster::gateway::{CallIdentity, ClusterAccess, GateError, GuestCall};
use crate::error::HasKind;
use crate::runtime::bindings::{cluster, types};
use crate::security::{Security, SecurityWriteError};

/// The import linked here.
pub const IMPORTS: &[Covers] = &[Covers {
    package: "warden:extension",
    items: &["cluster"],
    versions: Versions::Ours01,
    class: ImportClass::Needs(Capability::Cluster),
}];

/// One invocation's cluster context.
#[derive(Debug, Clone, Default)]
pub struct ClusterCtx {
    /// The OBO token for this invocation (none when anonymous).
    pub token: Option<String>,
    /// Where calls go (none: the host runs without a cluster, or the
    /// extension is not granted `cluster`).
    pub access: Option<Arc<dyn ClusterAccess>>,
}

/// What `cluster` host functions see.
pub type ClusterView<'a> = CapView<'a, ClusterCtx>;

/// The `HasData` marker of `warden:extension/cluster`.
#[derive(Debug)]
pub struct Cluster;

impl HasData for Cluster {
    type Data<'a> = ClusterView<'a>;
}

pub fn link<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> ClusterView<'_>,
) -> wasmtime::Result<()> {
    cluster::add_to_linker::<T, Cluster>(linker, view)
}

/// Load-time preparation for the extensions granted `cluster`: their
/// service accounts exist (created if missing), and an extension without
/// a policy role `extension:<id>` is named in a warning.
pub fn prepare(security: &Security, clustered: &[&str]) -> Result<(), SecurityWriteError> {
    for account in security.ensure_service_accounts(clustered.iter().copied())? {
        tracing::info!(account, "service account created");
    }
    let state = security.state();
    for &id in clustered {
        let policy = format!("{}{id}", crate::security::config::EXTENSION_POLICY_PREFIX);
        if !state.config.roles.contains_key(&policy) {
            tracing::warn!(
                extension = id,
                "extension `{id}` is granted `cluster` but has no policy role `{policy}`: its calls as a user are denied by the service gate until an operator creates that role"
            );
        }
    }
    Ok(())
}

impl cluster::Host for ClusterView<'_> {
    async fn call(
        &mut self,
        request: cluster::Request,
    ) -> wasmtime::Result<Result<cluster::Response, types::Error>> {
        if !self.granted {
            return Ok(Err(not_granted(Capability::Cluster)));
        }
        let Some(access) = self.ctx.access.clone() else {
            return Ok(Err(types::Error::Unavailable("no cluster is configured for this invocation".into())));
        };
        let (extension, request_id) = (self.extension.clone(), self.request_id.to_owned());
        let token = self.ctx.token.clone();
        // Store work blocks: it runs on the blocking pool, so the executor
        // keeps serving, and the invocation's wall-clock timeout (which
        // wraps this await) still stops a guest waiting on a slow call.
        let call = tokio::task::spawn_blocking(move || {
            let call = GuestCall {
                extension: &extension,
                request_id: &request_id,
                token: token.as_deref(),
                identity: identity(request.identity),
                method: &request.method,
                path: &request.path,
                body: request.body.as_deref(),
            };
            access.call(&call).map(response).map_err(error)
        });
        Ok(call.await.unwrap_or_else(|e| {
            Err(types::Error::Unavailable(format!("the cluster call did not complete: {e}")))
        }))
    }
}

fn identity(identity: cluster::Identity) -> CallIdentity {
    match identity {
        cluster::Identity::User => CallIdentity::User,
        cluster::Identity::Service => CallIdentity::Service,
    }
}

/// The cluster's reply as the guest gets it: status and JSON body.
fn response(reply: Reply) -> cluster::Response {
    cluster::Response {
        status: reply.status,
        headers: vec![types::Header { name: "content-type".into(), value: "application/json".into() }],
        body: serde_json::to_vec(&reply.body).unwrap_or_default(),
    }
}

/// A refusal tells the guest which gate said no; everything else is its kind.
fn error(e: GateError) -> types::Error {
    match e {
        GateError::Refused(refusal) => to_wit(refusal.kind(), refusal.qualified()),
        other => to_wit(other.kind(), other.to_string()),
    }
}

/// The capability alone, with a fake gateway (Spin's `factor_test.rs`
/// style): the WIT request reaches the domain call intact, the domain
/// reply and errors come back as the WIT types, and the grant and the
/// missing cluster are answered before any call is made.
#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::cluster::gateway::Refusal;
    use crate::error::{Denial, Gate};

    /// What the fake saw of one call.
    #[derive(Debug, Clone, PartialEq)]
    struct Seen {
        extension: String,
        request_id: String,
        token: Option<String>,
        identity: CallIdentity,
        method: String,
        path: String,
        body: Option<Vec<u8>>,
    }

    /// Records every call and answers a canned domain reply.
    #[derive(Debug)]
    struct FakeCluster {
        seen: Mutex<Vec<Seen>>,
        answer: Result<Reply, GateError>,
    }

    impl FakeCluster {
        fn answering(answer: Result<Reply, GateError>) -> Arc<FakeCluster> {
            Arc::new(FakeCluster { seen: Mutex::new(Vec::new()), answer })
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().map(|s| s.clone()).unwrap_or_default()
        }
    }

    impl ClusterAccess for FakeCluster {
        fn call(&self, call: &GuestCall<'_>) -> Result<Reply, GateError> {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(Seen {
                    extension: call.extension.to_owned(),
                    request_id: call.request_id.to_owned(),
                    token: call.token.map(str::to_owned),
                    identity: call.identity,
                    method: call.method.to_owned(),
                    path: call.path.to_owned(),
                    body: call.body.map(<[u8]>::to_vec),
                });
            }
            self.answer.clone()
        }
    }

    type R = Result<(), Box<dyn std::error::Error>>;

    fn request(identity: cluster::Identity) -> cluster::Request {
        cluster::Request {
            identity,
            method: "POST".into(),
            path: "/logs/_search".into(),
            body: Some(br#"{"size":1}"#.to_vec()),
        }
    }

    async fn call(
        ctx: &mut ClusterCtx,
        granted: bool,
        request: cluster::Request,
    ) -> wasmtime::Result<Result<cluster::Response, types::Error>> {
        let extension: Arc<str> = "reporter".into();
        let mut view = ClusterView { ctx, extension: &extension, request_id: "req-1", granted };
        cluster::Host::call(&mut view, request).await
    }

    #[tokio::test]
    async fn a_call_is_converted_both_ways() -> R {
        let reply = Reply { status: 201, body: serde_json::json!({"hits": {"total": 1}}) };
        let fake = FakeCluster::answering(Ok(reply));
        let mut ctx = ClusterCtx { token: Some("tok".into()), access: Some(fake.clone()) };

        let response = call(&mut ctx, true, request(cluster::Identity::User)).await??;
        assert_eq!(response.status, 201);
        assert_eq!(response.headers.len(), 1);
        assert_eq!(
            (response.headers[0].name.as_str(), response.headers[0].value.as_str()),
            ("content-type", "application/json")
        );
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&response.body)?,
            serde_json::json!({"hits": {"total": 1}})
        );
        let expected = Seen {
            extension: "reporter".into(),
            request_id: "req-1".into(),
            token: Some("tok".into()),
            identity: CallIdentity::User,
            method: "POST".into(),
            path: "/logs/_search".into(),
            body: Some(br#"{"size":1}"#.to_vec()),
        };
        assert_eq!(fake.seen(), vec![expected.clone()]);

        // As the service identity: the same call, the identity converted.
        call(&mut ctx, true, request(cluster::Identity::Service)).await??;
        assert_eq!(fake.seen()[1], Seen { identity: CallIdentity::Service, ..expected });
        Ok(())
    }

    #[tokio::test]
    async fn domain_errors_become_wit_errors() -> R {
        let cases = [
            (
                GateError::Refused(Refusal::Gate(Denial::new(Gate::User, "no permissions"))),
                types::Error::Denied("user gate: no permissions".into()),
            ),
            (
                GateError::UnknownApi { method: "GET".into(), path: "/_nodes".into() },
                types::Error::Invalid("no such API: GET /_nodes".into()),
            ),
            (GateError::Invalid("bad".into()), types::Error::Invalid("bad".into())),
            (GateError::Unavailable("later".into()), types::Error::Unavailable("later".into())),
            (GateError::Internal("oops".into()), types::Error::Internal("oops".into())),
        ];
        for (error, expected) in cases {
            let fake = FakeCluster::answering(Err(error.clone()));
            let mut ctx = ClusterCtx { token: Some("tok".into()), access: Some(fake) };
            let got = call(&mut ctx, true, request(cluster::Identity::User)).await?;
            assert_eq!(format!("{:?}", got.err()), format!("{:?}", Some(expected)), "{error:?}");
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_withdrawn_grant_is_denied_even_when_linked() -> R {
        let fake = FakeCluster::answering(Ok(Reply { status: 200, body: serde_json::json!({}) }));
        let mut ctx = ClusterCtx { token: Some("tok".into()), access: Some(fake.clone()) };
        let got = call(&mut ctx, false, request(cluster::Identity::User)).await?;
        assert!(
            matches!(&got, Err(types::Error::Denied(m)) if m.contains("`cluster` capability is not granted")),
            "{got:?}"
        );
        assert!(fake.seen().is_empty(), "no call reached the cluster");
        Ok(())
    }

    #[tokio::test]
    async fn no_cluster_is_unavailable() -> R {
        let got = call(&mut ClusterCtx::default(), true, request(cluster::Identity::User)).await?;
        assert!(
            matches!(&got, Err(types::Error::Unavailable(m)) if m == "no cluster is configured for this invocation"),
            "{got:?}"
        );
        Ok(())
    }
}
