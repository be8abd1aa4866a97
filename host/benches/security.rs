//! `security`: the cost of a privilege check as the configuration grows,
//! and of authenticating a cached Basic credential.
//!
//! Privilege checks run at 10 / 100 / 1,000 roles and 10 / 1,000 / 100,000
//! indices in the cluster. Every index is named by some role (as exact names
//! spread over the roles), and every role also carries a prefix pattern and
//! a glob, so larger configurations mean larger tables, not only more roles.
//! The subject holds 3 roles; each check asks for one index action on one
//! index (a different one each time). Goal: the largest case within 2× of
//! the smallest.

use std::collections::BTreeMap;

use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use warden_host::security::config::{IndexPermission, InternalUser, Role, SecurityConfig};
use warden_host::security::mapping::Principal;
use warden_host::security::{Security, SecurityState, password};

fn config(roles: usize, indices: usize) -> Result<SecurityConfig, Box<dyn std::error::Error>> {
    let mut config = SecurityConfig::default();
    let per_role = indices.div_ceil(roles);
    for r in 0..roles {
        let exact: Vec<String> = (0..per_role).map(|k| format!("idx-{}", r * per_role + k)).collect();
        let role = Role {
            cluster_permissions: vec!["cluster_monitor".into()],
            index_permissions: vec![
                IndexPermission {
                    index_patterns: exact,
                    allowed_actions: vec!["read".into()],
                    ..IndexPermission::default()
                },
                IndexPermission {
                    index_patterns: vec![format!("team{r}-*"), format!("t?am{r}-logs-*")],
                    allowed_actions: vec!["crud".into()],
                    ..IndexPermission::default()
                },
            ],
            ..Role::default()
        };
        config.roles.insert(format!("role{r}"), role);
    }
    Ok(config.with_static()?)
}

fn privileges(c: &mut Criterion) {
    let mut group = c.benchmark_group("privileges");
    for roles in [10usize, 100, 1_000] {
        for indices in [10usize, 1_000, 100_000] {
            let Ok(config) = config(roles, indices) else { continue };
            let state = SecurityState::compile(config);
            let principal = Principal {
                name: "bench".into(),
                direct_roles: vec![
                    "role0".into(),
                    format!("role{}", roles / 2),
                    format!("role{}", roles - 1),
                ],
                ..Principal::default()
            };
            let subject = state.subject(&principal, None);
            let per_role = indices.div_ceil(roles);
            // Indices the subject may read (its roles' exact names) and ones it may not.
            let allowed: Vec<String> = (0..per_role.min(64)).map(|k| format!("idx-{k}")).collect();
            let mut i = 0usize;
            group.bench_function(
                BenchmarkId::new(format!("roles={roles}"), format!("indices={indices}")),
                |b| {
                    b.iter(|| {
                        i = i.wrapping_add(1);
                        let index = &allowed[i % allowed.len()];
                        let read = state.privileges.check_indices(
                            &subject,
                            "indices:data/read/search",
                            [index.as_str()],
                        );
                        let denied = state.privileges.check_indices(
                            &subject,
                            "indices:data/write/index",
                            [index.as_str()],
                        );
                        (read.is_ok(), denied.is_ok())
                    })
                },
            );
        }
    }
    group.finish();
}

fn basic_auth(c: &mut Criterion) {
    let mut config = SecurityConfig::default();
    let Ok(hash) = password::hash("Bench-Password-1") else { return };
    let user =
        InternalUser { hash: Some(hash), backend_roles: vec!["admin".into()], ..InternalUser::default() };
    config.internal_users = BTreeMap::from([("bench".to_owned(), user)]);
    let Ok(config) = config.with_static() else { return };
    let security = Security::new(config);
    let header =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:Bench-Password-1"));
    // `authenticate` is async (bcrypt runs on the blocking pool).
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
    // The first call pays bcrypt and fills the cache.
    if rt.block_on(security.authenticate(Some(&header), None)).is_err() {
        return;
    }
    c.bench_function("authn/basic_cached", |b| {
        b.iter(|| rt.block_on(security.authenticate(Some(&header), None)).is_ok())
    });
}

criterion_group!(benches, privileges, basic_auth);
criterion_main!(benches);
