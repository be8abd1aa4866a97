//! Table-driven authorization suite, following OpenSearch security
//! semantics: mappings by user, backend role, host and and_backend_roles;
//! glob and regex patterns; nested action groups (static and custom);
//! multi-index requests with one forbidden index; user attributes in index
//! patterns; extension permissions; extension policies.

use std::net::IpAddr;
use std::path::Path;

use warden_host::security::SecurityState;
use warden_host::security::config::SecurityConfig;
use warden_host::security::mapping::Principal;
use warden_host::security::privileges::Subject;

enum Check {
    Cluster(&'static str),
    Index(&'static str, &'static [&'static str]),
    Extension(&'static str),
}

struct Case {
    user: &'static str,
    backend_roles: &'static [&'static str],
    host: &'static str,
    check: Check,
    allowed: bool,
}

const fn case(user: &'static str, backend: &'static [&'static str], check: Check, allowed: bool) -> Case {
    Case { user, backend_roles: backend, host: "127.0.0.1", check, allowed }
}

use Check::{Cluster, Extension, Index};

const CASES: &[Case] = &[
    // logs_reader: backend role `analyst` (exact) or /ops.*/ (regex); nested custom → static groups.
    case("ana", &["analyst"], Index("indices:data/read/search", &["logs-2026"]), true),
    case("ana", &["analyst"], Index("indices:data/read/get", &["logs-a"]), true),
    case("ana", &["analyst"], Index("indices:data/read/msearch", &["logs-a"]), true),
    case("ana", &["analyst"], Index("indices:data/write/index", &["logs-a"]), false),
    case("ana", &["analyst"], Index("indices:data/read/search", &["logs"]), false),
    case("ana", &["analyst"], Index("indices:data/read/search", &["logs-a", "logs-b"]), true),
    case("ana", &["analyst"], Index("indices:data/read/search", &["logs-a", "secret"]), false),
    case("zed", &["analyst"], Index("indices:data/read/search", &["logs-a"]), true),
    case("zed", &["opsteam"], Index("indices:data/read/search", &["logs-a"]), true),
    case("zed", &["xops"], Index("indices:data/read/search", &["logs-a"]), false),
    case("zed", &[], Index("indices:data/read/search", &["logs-a"]), false),
    // metrics_writer: users op* (glob); `?` in index patterns; cluster_monitor group.
    case("ops", &[], Index("indices:data/write/index", &["metrics-2026.07"]), true),
    case("opal", &[], Index("indices:data/write/bulk", &["metrics-2026.12"]), true),
    case("ops", &[], Index("indices:admin/create", &["metrics-2026.01"]), true),
    case("ops", &[], Index("indices:data/write/index", &["metrics-2026.7"]), false),
    case("ops", &[], Index("indices:data/write/index", &["metrics-2026.123"]), false),
    case("ops", &[], Index("indices:admin/delete", &["metrics-2026.07"]), false),
    case("ops", &[], Cluster("cluster:monitor/health"), true),
    case("ops", &[], Cluster("cluster:monitor/state"), true),
    case("ops", &[], Cluster("cluster:admin/reroute"), false),
    case("xops", &[], Cluster("cluster:monitor/health"), false),
    // readall mapped to ops (static role): read on every index.
    case("ops", &[], Index("indices:data/read/search", &["anything", "logs-a", "hr"]), true),
    case("ops", &[], Index("indices:data/write/delete", &["anything"]), false),
    // regex_reader: users /an[a-z]/, index /audit-(eu|us)-\d{4}/ full match.
    case("ana", &[], Index("indices:data/read/search", &["audit-eu-2026"]), true),
    case("ana", &[], Index("indices:data/read/search", &["audit-us-1999"]), true),
    case("ana", &[], Index("indices:data/read/search", &["audit-apac-2026"]), false),
    case("ana", &[], Index("indices:data/read/search", &["audit-eu-2026-old"]), false),
    case("anna", &[], Index("indices:data/read/search", &["audit-eu-2026"]), false),
    // team_space: ${attr.internal.team} from ana's attributes.
    case("ana", &[], Index("indices:data/write/index", &["team-blue-notes"]), true),
    case("ana", &[], Index("indices:data/read/get", &["team-blue-x"]), true),
    case("ana", &[], Index("indices:data/write/index", &["team-red-notes"]), false),
    // Cyclic action groups resolve what they contain and stop.
    case("ana", &[], Index("indices:data/read/get", &["loops"]), true),
    case("ana", &[], Index("indices:data/read/search", &["loops"]), false),
    // oncall_admin: and_backend_roles — all must match.
    case("zed", &["ops", "oncall"], Cluster("cluster:admin/settings/update"), true),
    case("zed", &["oncall", "ops", "extra"], Cluster("cluster:admin/settings/update"), true),
    case("zed", &["ops"], Cluster("cluster:admin/settings/update"), false),
    case("zed", &["oncall"], Cluster("cluster:admin/settings/update"), false),
    // Extension permissions: exact route, broad `extension:hello/*`.
    case("ana", &[], Extension("extension:hello/greet"), true),
    case("ana", &[], Extension("extension:hello/goodbye"), false),
    case("ana", &[], Extension("extension:other/greet"), false),
    case("zed", &["oncall"], Extension("extension:hello/goodbye"), true),
    case("zed", &["oncall"], Extension("extension:hello/greet"), true),
    case("zed", &["oncall"], Extension("extension:reporter/run"), false),
    case("zed", &[], Extension("extension:hello/greet"), false),
    // Roles given directly to an internal user.
    case("direct", &[], Index("indices:data/read/get", &["hr"]), true),
    case("direct", &[], Index("indices:data/read/search", &["hr"]), false),
    // A user with no roles gets nothing.
    case("nobody", &[], Cluster("cluster:monitor/health"), false),
    case("nobody", &[], Index("indices:data/read/search", &["logs-a"]), false),
    case("nobody", &[], Extension("extension:hello/greet"), false),
];

/// Host-based mappings: (host, allowed for `cluster:monitor/health`).
const HOST_CASES: &[(&str, bool)] =
    &[("10.1.2.3", true), ("10.1.0.1", true), ("10.2.0.1", false), ("127.0.0.1", false)];

fn state() -> Result<SecurityState, Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/authz");
    Ok(SecurityState::compile(SecurityConfig::load_dir(&dir)?))
}

fn subject(state: &SecurityState, user: &str, backend: &[&str], host: &str) -> Subject {
    let record = state.config.internal_users.get(user);
    let mut attributes: std::collections::HashMap<String, String> = record
        .map(|r| r.attributes.iter().map(|(k, v)| (format!("attr.internal.{k}"), v.clone())).collect())
        .unwrap_or_default();
    attributes.insert("user_name".into(), user.into());
    let principal = Principal {
        name: user.into(),
        backend_roles: backend.iter().map(|s| s.to_string()).collect(),
        direct_roles: record.map(|r| r.opendistro_security_roles.clone()).unwrap_or_default(),
        attributes,
    };
    state.subject(&principal, host.parse::<IpAddr>().ok())
}

fn decide(state: &SecurityState, subject: &Subject, check: &Check) -> Result<(), String> {
    let p = &state.privileges;
    match check {
        Cluster(action) => p.check_cluster(subject, action),
        Index(action, indices) => p.check_indices(subject, action, indices.iter().copied()),
        Extension(permission) => p.check_extension(subject, permission),
    }
    .map_err(|d| d.to_string())
}

#[test]
fn authorization_table() -> Result<(), Box<dyn std::error::Error>> {
    let state = state()?;
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let subject = subject(&state, c.user, c.backend_roles, c.host);
        let outcome = decide(&state, &subject, &c.check);
        if outcome.is_ok() != c.allowed {
            failures.push(format!("case {i} ({} {:?}): got {outcome:?}", c.user, c.backend_roles));
        }
    }
    for (host, allowed) in HOST_CASES {
        let subject = subject(&state, "zed", &[], host);
        let outcome = decide(&state, &subject, &Cluster("cluster:monitor/health"));
        if outcome.is_ok() != *allowed {
            failures.push(format!("host {host}: got {outcome:?}"));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}

/// A subject whose attributes are exactly `attributes` (plus `user_name`),
/// as a JWT's claims or an internal user's attributes would give them, for
/// roles mapped to `user`.
fn subject_with(state: &SecurityState, user: &str, attributes: &[(&str, &str)]) -> Subject {
    let mut map: std::collections::HashMap<String, String> =
        attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.insert("user_name".into(), user.into());
    let principal =
        Principal { name: user.into(), backend_roles: Vec::new(), direct_roles: Vec::new(), attributes: map };
    state.subject(&principal, "127.0.0.1".parse::<IpAddr>().ok())
}

/// `${attr.*}` and `${user_name}` take the value as text: a hostile value
/// (a glob, a regex, a nested placeholder) never widens the pattern.
#[test]
fn substituted_values_are_never_patterns() -> Result<(), Box<dyn std::error::Error>> {
    let state = state()?;
    let write = |subject: &Subject, index: &str| {
        state
            .privileges
            .check_indices(subject, "indices:data/write/index", [index])
            .map_err(|d| d.to_string())
    };
    // The positive control: ana's own team.
    let red = subject_with(&state, "ana", &[("attr.internal.team", "red")]);
    assert!(write(&red, "team-red-notes").is_ok());
    // `team-${attr.internal.team}-*` with hostile team values: as a JWT
    // claim `team: "*"` would give them.
    for team in ["*", "r*", "re?", "/.*/", "/red/", ".*", "${user_name}", "red-*"] {
        let hostile = subject_with(&state, "ana", &[("attr.internal.team", team), ("attr.jwt.team", team)]);
        let outcome = write(&hostile, "team-red-notes");
        assert!(outcome.is_err(), "team {team:?} reached team-red-notes: {outcome:?}");
        assert!(write(&hostile, "team-blue-notes").is_err(), "team {team:?}");
    }

    // `${user_name}` (OpenSearch's static `own_index`): users named like
    // patterns reach no index but the one spelled exactly like their name.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/opensearch-demo");
    let demo = SecurityState::compile(SecurityConfig::load_dir(&dir)?);
    let own_index = demo.privileges.role_id("own_index").ok_or("no own_index role")?;
    let owning = |name: &str| {
        let mut subject = subject_with(&demo, name, &[]);
        subject.roles.insert(own_index);
        subject
    };
    let write_demo = |subject: &Subject, index: &str| {
        demo.privileges.check_indices(subject, "indices:data/write/index", [index]).map_err(|d| d.to_string())
    };
    assert!(write_demo(&owning("logstash"), "logstash").is_ok(), "the positive control");
    for name in ["/.*/", "*", "log*", "/team-.*/", "team-red-*", "team-red-note?"] {
        let hostile = owning(name);
        for index in ["logstash", "team-red-notes", "kibanaro"] {
            let outcome = write_demo(&hostile, index);
            assert!(outcome.is_err(), "user {name:?} reached {index}: {outcome:?}");
        }
    }
    Ok(())
}

#[test]
fn denials_name_the_action_and_the_index() -> Result<(), Box<dyn std::error::Error>> {
    let state = state()?;
    let ana = subject(&state, "ana", &["analyst"], "127.0.0.1");
    let denied = decide(&state, &ana, &Index("indices:data/read/search", &["logs-a", "secret", "other"]));
    assert_eq!(denied, Err("no role of `ana` grants `indices:data/read/search` on index `secret`".into()));
    let denied = decide(&state, &ana, &Cluster("cluster:admin/reroute"));
    assert_eq!(denied, Err("no role of `ana` grants `cluster:admin/reroute`".into()));
    Ok(())
}

#[test]
fn extension_policies_are_the_service_gate() -> Result<(), Box<dyn std::error::Error>> {
    let state = state()?;
    let reporter = state.privileges.extension_policy("reporter");
    let p = &state.privileges;
    assert!(p.check_indices(&reporter, "indices:data/read/search", ["reports-2026"]).is_ok());
    assert!(p.check_indices(&reporter, "indices:data/write/index", ["reports-2026"]).is_ok());
    assert!(p.check_indices(&reporter, "indices:data/write/delete", ["reports-2026"]).is_err());
    assert!(p.check_indices(&reporter, "indices:data/read/search", ["logs-a"]).is_err());
    // An extension without a policy role has nothing.
    let other = p.extension_policy("hello");
    assert!(p.check_indices(&other, "indices:data/read/search", ["reports-2026"]).is_err());
    Ok(())
}

#[test]
fn extension_policies_cannot_be_mapped_to_users() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("roles.yml"),
        "_meta:\n  type: roles\n  config_version: 2\n\"extension:x\":\n  cluster_permissions: [\"*\"]\n",
    )?;
    std::fs::write(
        dir.path().join("roles_mapping.yml"),
        "_meta:\n  type: rolesmapping\n  config_version: 2\n\"extension:x\":\n  users: [\"mallory\"]\n",
    )?;
    let error = SecurityConfig::load_dir(dir.path()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("entry `extension:x`: extension policies cannot be mapped to users"), "{error}");
    Ok(())
}

#[test]
fn opensearch_demo_config_loads_unchanged_and_means_the_same() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/opensearch-demo");
    let state = SecurityState::compile(SecurityConfig::load_dir(&dir)?);
    // admin → backend role admin → all_access: everything, extensions included.
    let admin = subject(&state, "admin", &["admin"], "127.0.0.1");
    assert!(decide(&state, &admin, &Index("indices:admin/delete", &["any"])).is_ok());
    assert!(decide(&state, &admin, &Extension("extension:hello/greet")).is_ok());
    // readall → readall: read anything, write nothing.
    let readall = subject(&state, "readall", &["readall"], "127.0.0.1");
    assert!(decide(&state, &readall, &Index("indices:data/read/search", &["a", "b"])).is_ok());
    assert!(decide(&state, &readall, &Index("indices:data/write/index", &["a"])).is_err());
    assert!(decide(&state, &readall, &Extension("extension:hello/greet")).is_err());
    // anomalyadmin → anomaly_full_access via opendistro_security_roles.
    let anomaly = subject(&state, "anomalyadmin", &[], "127.0.0.1");
    assert!(decide(&state, &anomaly, &Cluster("cluster:admin/opendistro/ad/detector/info")).is_ok());
    assert!(decide(&state, &anomaly, &Cluster("cluster:admin/reroute")).is_err());
    // kibanaserver is mapped by user name to kibana_server.
    let kibana = subject(&state, "kibanaserver", &[], "127.0.0.1");
    assert!(state.privileges.role_names(&kibana.roles).contains(&"kibana_server".to_owned()));
    // own_index (static): ${user_name} in the index pattern.
    let mut with_own = subject(&state, "logstash", &["logstash"], "127.0.0.1");
    if let Some(id) = state.privileges.role_id("own_index") {
        with_own.roles.insert(id);
    }
    assert!(decide(&state, &with_own, &Index("indices:data/write/index", &["logstash"])).is_ok());
    assert!(decide(&state, &with_own, &Index("indices:admin/delete", &["kibanaro"])).is_err());
    Ok(())
}
