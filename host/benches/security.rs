//! `security`: the cost of a privilege check as the configuration grows,
//! and of authenticating a cached Basic credential.
//!
//! Privilege checks run at 10 / 100 / 1,000 roles and 10 / 1,000 / 100,000
//! indices in the cluster. Every index is named by some role (as exact names
//! spread over the roles; every role names at least 4, so with many roles
//! and few indices there are more names than indices), and every role also
//! carries a prefix pattern and a glob, so larger configurations mean larger
//! tables, not only more roles.
//!
//! The subject holds 3 roles (the first, the middle and the last). Every
//! case checks the same 48 distinct index names, in turn: for each of the
//! subject's roles 4 names it reads by an exact name (read allowed, write
//! denied), 4 by its prefix pattern and 4 by its glob (both allowed), and 12
//! it may not touch (exact names and a prefix of a role it does not hold,
//! names no role grants). Each iteration asks for one read and one write on
//! one name; every answer is checked before timing and in the timed loop.
//! Goal: the largest case within 2× of the smallest.
//!
//! `service_policy/*`: what the service gate of one extension call costs
//! to build, with 1,000 roles each carrying a `services_mappings` entry
//! (spread over 50 extensions, each entry naming a user exactly and a
//! backend-role pattern, so each extension has 20 exact names and 20
//! patterned entries). `policy_only` is what the gateway built before
//! (`extension_policy`), `unmapped_extension` an extension no entry names
//! (the common case), `mapped_by_name` and `mapped_by_backend_role` a user
//! matched by an exact name and by a pattern, `unmatched_user` a user the
//! extension's entries all have to be tried for. Every answer is checked.
//! Measured (2 shared cores, busy): policy_only 132 ns, unmapped_extension
//! 168 ns (one hash probe; with no services_mappings at all the map is
//! empty and the probe returns before hashing, so the gateway bench's
//! configuration pays nothing), unmatched_user 182 ns, mapped_by_name
//! 304 ns, mapped_by_backend_role 402 ns (the widened role set and the
//! audit's description built): cheaper than a memo keyed by (extension,
//! user, backend roles) would be to look up, so it is not memoised.

use std::collections::BTreeMap;

use base64::Engine as _;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use warden_host::security::config::{
    IndexPermission, InternalUser, Role, RoleMapping, SecurityConfig, ServiceMapping,
};
use warden_host::security::mapping::Principal;
use warden_host::security::{Security, SecurityState, password};

type Error = Box<dyn std::error::Error>;

/// Exact names per role: at least 4, so every case has 4 per subject role.
fn per_role(roles: usize, indices: usize) -> usize {
    indices.div_ceil(roles).max(4)
}

fn config(roles: usize, indices: usize) -> Result<SecurityConfig, Error> {
    let mut config = SecurityConfig::default();
    let per_role = per_role(roles, indices);
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

/// The 48 names every case checks, each with (read allowed, write allowed).
fn names(roles: usize, indices: usize, held: [usize; 3]) -> Vec<(String, bool, bool)> {
    let per_role = per_role(roles, indices);
    let mut names = Vec::new();
    for r in held {
        // Spread over the role's exact names, first and last included.
        for k in 0..4 {
            names.push((format!("idx-{}", r * per_role + k * (per_role - 1) / 3), true, false));
        }
        for k in 0..4 {
            names.push((format!("team{r}-{k}"), true, true));
            // `tbam…` matches the glob `t?am{r}-logs-*`, not the prefix `team{r}-`.
            names.push((format!("tbam{r}-logs-{k}"), true, true));
        }
    }
    // Role 1 is never held (the middle role is at least role 5).
    for k in 0..4 {
        names.push((format!("idx-{}", per_role + k), false, false));
        names.push((format!("team1-{k}"), false, false));
        names.push((format!("nobody-{k}"), false, false));
    }
    names
}

fn privileges(c: &mut Criterion) -> Result<(), Error> {
    let mut group = c.benchmark_group("privileges");
    for roles in [10usize, 100, 1_000] {
        for indices in [10usize, 1_000, 100_000] {
            let config =
                config(roles, indices).map_err(|e| format!("roles={roles} indices={indices}: {e}"))?;
            let state = SecurityState::compile(config);
            let held = [0, roles / 2, roles - 1];
            let principal = Principal {
                name: "bench".into(),
                direct_roles: held.iter().map(|r| format!("role{r}")).collect(),
                ..Principal::default()
            };
            let subject = state.subject(&principal, None);
            let names = names(roles, indices, held);
            let distinct: std::collections::BTreeSet<&str> =
                names.iter().map(|(n, _, _)| n.as_str()).collect();
            if names.len() != 48 || distinct.len() != 48 {
                return Err(
                    format!("roles={roles} indices={indices}: {} distinct names", distinct.len()).into()
                );
            }
            let check = |name: &str| {
                let read = state.privileges.check_indices(&subject, "indices:data/read/search", [name]);
                let write = state.privileges.check_indices(&subject, "indices:data/write/index", [name]);
                (read.is_ok(), write.is_ok())
            };
            for (name, read, write) in &names {
                if check(name) != (*read, *write) {
                    return Err(format!(
                        "roles={roles} indices={indices}: `{name}` should be read={read} write={write}, is {:?}",
                        check(name)
                    )
                    .into());
                }
            }
            let mut i = 0usize;
            group.bench_function(
                BenchmarkId::new(format!("roles={roles}"), format!("indices={indices}")),
                |b| {
                    b.iter(|| {
                        i = (i + 1) % names.len();
                        let (name, read, write) = &names[i];
                        let answer = check(name);
                        if answer != (*read, *write) {
                            panic!("`{name}`: {answer:?}");
                        }
                        answer
                    })
                },
            );
        }
    }
    group.finish();
    Ok(())
}

fn basic_auth(c: &mut Criterion) -> Result<(), Error> {
    let mut config = SecurityConfig::default();
    let hash = password::hash("Bench-Password-1")?;
    let user =
        InternalUser { hash: Some(hash), backend_roles: vec!["admin".into()], ..InternalUser::default() };
    config.internal_users = BTreeMap::from([("bench".to_owned(), user)]);
    let security = Security::new(config.with_static()?);
    let header =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:Bench-Password-1"));
    // `authenticate` is async (bcrypt runs on the blocking pool).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // The first call pays bcrypt and fills the cache.
    let first = rt.block_on(security.authenticate(Some(&header), None)).map_err(|e| format!("login: {e}"))?;
    if first.principal.name != "bench" {
        return Err(format!("logged in as `{}`", first.principal.name).into());
    }
    c.bench_function("authn/basic_cached", |b| {
        b.iter(|| match rt.block_on(security.authenticate(Some(&header), None)) {
            Ok(user) => user,
            Err(e) => panic!("a cached login failed: {e}"),
        })
    });
    Ok(())
}

fn service_policy(c: &mut Criterion) -> Result<(), Error> {
    let mut config = config(1_000, 10)?;
    for r in 0..1_000usize {
        let entry =
            ServiceMapping { users: vec![format!("user{r}")], backend_roles: vec![format!("team{r}-*")] };
        let mapping = RoleMapping {
            services_mappings: BTreeMap::from([(format!("ext{}", r % 50), entry)]),
            ..RoleMapping::default()
        };
        config.roles_mapping.insert(format!("role{r}"), mapping);
    }
    for e in 0..51 {
        config.roles.insert(format!("extension:ext{e}"), Role::default());
    }
    config.validate()?;
    let state = SecurityState::compile(config);
    let mut group = c.benchmark_group("service_policy");
    let none: [String; 0] = [];
    let team = ["team57-eu".to_owned()];
    // (case, extension, user, backend roles, the description expected)
    let cases: [(&str, &str, &str, &[String], &str); 4] = [
        ("unmapped_extension", "ext50", "user7", &none, "extension:ext50"),
        ("mapped_by_name", "ext7", "user7", &none, "extension:ext7 + role7"),
        ("mapped_by_backend_role", "ext7", "nobody", &team, "extension:ext7 + role57"),
        ("unmatched_user", "ext7", "nobody", &none, "extension:ext7"),
    ];
    let baseline = state.privileges.extension_policy("ext7");
    if baseline.roles.ids().count() != 1 {
        return Err("the policy role is missing".into());
    }
    group.bench_function("policy_only", |b| b.iter(|| state.privileges.extension_policy("ext7")));
    for (case, extension, user, backend, expected) in cases {
        let policy = state.service_policy(extension, user, backend);
        if policy.description != expected {
            return Err(format!("{case}: `{}`, expected `{expected}`", policy.description).into());
        }
        group.bench_function(case, |b| {
            b.iter(|| {
                let policy = state.service_policy(extension, user, backend);
                if policy.description.len() != expected.len() {
                    panic!("{case}: {}", policy.description);
                }
                policy
            })
        });
    }
    group.finish();
    Ok(())
}

fn bench(c: &mut Criterion) {
    if let Err(e) = privileges(c) {
        eprintln!("security bench (privileges) failed: {e}");
        std::process::exit(1);
    }
    if let Err(e) = basic_auth(c) {
        eprintln!("security bench (authn/basic_cached) failed: {e}");
        std::process::exit(1);
    }
    if let Err(e) = service_policy(c) {
        eprintln!("security bench (service_policy) failed: {e}");
        std::process::exit(1);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
