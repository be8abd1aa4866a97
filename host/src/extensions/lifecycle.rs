//! The extension lifecycle: install (checked as a load would check it, then
//! kept *pending* in the store: it runs nothing), approve (loaded and
//! serving from the next request on, without a restart), remove (routes
//! 404 at once, its jobs suspended with the reason, its service account
//! removed), and, at start, loading every approved extension again from
//! the store (the compile cache is keyed by the component's hash, so this
//! is a cache hit). A failed step leaves nothing behind: the install is
//! checked completely before the one transaction that writes its record
//! and blob.
//!
//! **Upgrade.** Installing an id that is approved is an upgrade: the new
//! version is checked as an install is, then compared with what is
//! *granted* now ([`Delta`]). A change that only takes away applies at
//! once; one that adds anything waits, stored beside the record, while the
//! old version serves, until an operator approves it. Applying swaps the
//! registry's `Arc`: invocations under way finish on the old version, new
//! ones get the new one. The record (version, manifest, component, grants
//! back to the new request) and the roles it brings are written in one
//! compare-and-set transaction with the security configuration.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::capability::Capability;
use crate::cluster::gateway::{ClusterGateway, is_own_index};
use crate::cluster::{Params, actions};
use crate::error::{ErrorKind, HasKind};
use crate::extensions::delta::{Delta, Grants};
use crate::extensions::installed::{
    InstallState, Installed, InstalledError, InstalledStore, PendingUpgrade, Version, digest,
};
use crate::extensions::manifest::Policy;
use crate::extensions::policy::{self, PolicyError};
use crate::extensions::review::Review;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::registry::{LoadFailure, Origin, Registry};
use crate::runtime::{ExtensionError, LoadedExtension, Runtime};
use crate::scheduler::Scheduler;
use crate::security::{Security, SecurityWriteError, service_accounts};
use crate::time::now_ms;

/// The cluster permission every lifecycle endpoint requires (`all_access`
/// holds it through `*`).
pub const ADMIN_PERMISSION: &str = "restapi:admin/extensions";

/// Where an installed extension's files would be, for error messages: an
/// installed extension has no directory; its manifest and component are
/// named `installed/<id>/...`.
fn virtual_dir(id: Option<&str>) -> PathBuf {
    Path::new("installed").join(id.unwrap_or("upload"))
}

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Load(#[from] ExtensionError),
    #[error(transparent)]
    Store(#[from] InstalledError),
    #[error("extension `{0}` is already installed")]
    AlreadyInstalled(String),
    #[error(
        "extension `{id}` is already installed at version {version} with this manifest and \
         component: nothing to upgrade"
    )]
    Unchanged { id: String, version: String },
    #[error("extension `{0}` has no upgrade waiting for approval")]
    NoUpgrade(String),
    #[error(
        "extension `{id}`: what waits for approval changed since it was reviewed (review digest \
         {reviewed}, now {now}); review it again"
    )]
    ChangedSinceReview { id: String, reviewed: String, now: String },
    #[error(
        "extension `{0}` is loaded from the extensions directory; remove its directory there \
         (the lifecycle manages installed extensions only)"
    )]
    FromDirectory(String),
    #[error(
        "extension `{id}` is {state} and no upgrade of it waits: only a pending extension or a \
         pending upgrade can be approved"
    )]
    NotPending { id: String, state: &'static str },
    #[error("extension `{id}` is {state}: grants change only for an approved extension")]
    NotApproved { id: String, state: &'static str },
    /// Grants go at most as far as the manifest requests.
    #[error("extension `{id}`: cannot grant beyond what its manifest requests: {beyond}")]
    BeyondRequest { id: String, beyond: String },
    #[error("installed extension `{id}`: its component `{sha256}` is missing from the store")]
    MissingComponent { id: String, sha256: String },
    #[error("cannot change the service account of extension `{id}`: {source}")]
    Account { id: String, source: SecurityWriteError },
    /// A role the extension brings would take a name it may not.
    #[error(transparent)]
    Roles(#[from] PolicyError),
    /// The security configuration (the extension's roles) could not be written.
    #[error("cannot write the extension's roles: {0}")]
    RolesWrite(#[from] SecurityWriteError),
    #[error("cannot suspend the jobs of extension `{id}`: {message}")]
    Jobs { id: String, message: String },
    #[error("extension `{id}` was removed, but its indices could not all be deleted: {message}")]
    Purge { id: String, message: String },
}

impl HasKind for LifecycleError {
    fn kind(&self) -> ErrorKind {
        match self {
            LifecycleError::Manifest(e) => match e {
                // An uploaded manifest is never read from a file: any
                // refusal of it is the request's fault.
                crate::manifest::ManifestError::Read { .. } => ErrorKind::Invalid,
                e => e.kind(),
            },
            LifecycleError::Load(e) => match e {
                ExtensionError::Component(_) => ErrorKind::Invalid,
                e => e.kind(),
            },
            LifecycleError::Store(e) => e.kind(),
            LifecycleError::AlreadyInstalled(_)
            | LifecycleError::Unchanged { .. }
            | LifecycleError::NoUpgrade(_)
            | LifecycleError::ChangedSinceReview { .. }
            | LifecycleError::NotPending { .. }
            | LifecycleError::NotApproved { .. } => ErrorKind::Conflict,
            LifecycleError::BeyondRequest { .. } => ErrorKind::Invalid,
            LifecycleError::Roles(e) => e.kind(),
            LifecycleError::RolesWrite(source) => source.kind(),
            LifecycleError::FromDirectory(_) => ErrorKind::Invalid,
            LifecycleError::MissingComponent { .. }
            | LifecycleError::Account { .. }
            | LifecycleError::Jobs { .. }
            | LifecycleError::Purge { .. } => ErrorKind::Internal,
        }
    }
}

/// An installed record as an operator reads it: the permission review, what
/// it requests and what it is granted now.
#[derive(Debug, Clone)]
pub struct Described {
    pub review: Review,
    pub requested: Grants,
    pub granted: Grants,
    /// A pending upgrade's delta against what is granted now.
    pub upgrade_delta: Option<Delta>,
}

/// What a removal did besides forgetting the extension.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Removal {
    pub record: Option<Installed>,
    /// Ids of the jobs suspended.
    pub suspended_jobs: Vec<String>,
    /// With `purge`: the extension's own indices (`.ext-<id>`,
    /// `.ext-<id>_*`) deleted.
    pub indices_deleted: Vec<String>,
    pub service_account_removed: bool,
    /// Users' consents to it, revoked.
    pub consents_revoked: Vec<String>,
    /// The roles the extension brought (its policy role and predefined
    /// roles), removed with it.
    pub roles_removed: Vec<String>,
    /// The role mappings of removed roles, removed with them (a mapping
    /// must name an existing role) and warned about: who held them lost them.
    pub mappings_removed: Vec<String>,
}

/// What an install did.
#[derive(Debug, Clone)]
pub enum Installation {
    /// A new extension (or a new version of one still pending), pending.
    New(Installed),
    /// A new version of an approved extension that only narrows what is
    /// granted: applied, it serves from the next request on.
    Upgraded { record: Installed, from: String, delta: Delta },
    /// A new version that widens what is granted: stored, waiting for
    /// approval; the old version serves meanwhile.
    Waiting { record: Installed, delta: Delta },
}

impl Installation {
    pub fn record(&self) -> &Installed {
        match self {
            Installation::New(record)
            | Installation::Upgraded { record, .. }
            | Installation::Waiting { record, .. } => record,
        }
    }
}

/// What approving did: a pending extension now serves, or a pending
/// upgrade was applied (`upgraded_from` names the version it replaced).
#[derive(Debug, Clone)]
pub struct Approval {
    pub record: Installed,
    pub upgraded_from: Option<String>,
}

/// What installing a manifest and component would do, without doing it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    pub id: String,
    /// The version serving now (`None`: not installed, or only pending).
    pub installed_version: Option<String>,
    pub version: String,
    /// Against what is granted now (everything added when nothing is).
    pub delta: Delta,
    /// Whether the install would apply at once (an upgrade that only
    /// narrows) rather than wait for approval.
    pub applies_at_once: bool,
}

/// The lifecycle's services.
#[derive(Debug)]
pub struct Lifecycle {
    installed: InstalledStore,
    registry: Arc<Registry>,
    runtime: Arc<Runtime>,
    security: Arc<Security>,
    scheduler: Option<Arc<Scheduler>>,
    /// The cluster, for `purge` (deleting a removed extension's indices).
    cluster: Option<Arc<ClusterGateway>>,
    data_dir: PathBuf,
    /// One change at a time: a removal between an approval's store write
    /// and its registry insert would otherwise leave a removed extension
    /// serving. Changes are an operator's, rare; reads do not take it.
    changes: Mutex<()>,
}

impl Lifecycle {
    pub fn new(
        installed: InstalledStore,
        registry: Arc<Registry>,
        runtime: Arc<Runtime>,
        security: Arc<Security>,
        scheduler: Option<Arc<Scheduler>>,
        data_dir: PathBuf,
    ) -> Lifecycle {
        Lifecycle {
            installed,
            registry,
            runtime,
            security,
            scheduler,
            cluster: None,
            data_dir,
            changes: Mutex::new(()),
        }
    }

    /// With the cluster whose indices `purge` deletes.
    pub fn with_cluster(mut self, cluster: Arc<ClusterGateway>) -> Lifecycle {
        self.cluster = Some(cluster);
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Installs `manifest` + `component`, after every check a load makes
    /// (manifest, component, imports against the requested capabilities,
    /// exports, pool room); nothing is written unless all pass. A new id
    /// (or one still pending) is stored pending; an approved id is
    /// upgraded (see the module doc).
    pub fn install(
        &self,
        actor: &str,
        manifest_text: &str,
        component: &[u8],
    ) -> Result<Installation, LifecycleError> {
        let _change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let (manifest, checked) = self.check_new(manifest_text, component)?;
        let id = manifest.id.clone();
        let existing = self.installed.get(&id)?;
        let owned = match &existing {
            Some((record, _)) if record.state == InstallState::Approved => owned_roles(record),
            _ => BTreeSet::new(),
        };
        // The roles it would bring must be free now (checked again when
        // they are written).
        policy::check_clashes(&manifest, &self.security.state().config, &owned)?;
        let sha256 = digest(component);
        match existing {
            None => {
                drop(checked); // a pending extension runs nothing
                if self.registry.knows(&id) {
                    return Err(LifecycleError::AlreadyInstalled(id));
                }
                let record = Installed {
                    id: id.clone(),
                    state: InstallState::Pending,
                    version: manifest.version.clone(),
                    manifest: manifest_text.to_owned(),
                    component_sha256: sha256,
                    component_bytes: component.len() as u64,
                    installed_at: now_ms(),
                    installed_by: actor.to_owned(),
                    approved_at: None,
                    approved_by: None,
                    last_error: None,
                    grants: None,
                    upgrade: None,
                    previous_version: None,
                    upgraded_at: None,
                    upgraded_by: None,
                };
                self.installed.create(&record, component).map_err(|e| match e {
                    InstalledError::Exists(id) => LifecycleError::AlreadyInstalled(id),
                    e => e.into(),
                })?;
                self.registry.set_pending(&id);
                Ok(Installation::New(record))
            }
            Some((before, _)) if before.manifest == manifest_text && before.component_sha256 == sha256 => {
                Err(LifecycleError::Unchanged { id, version: before.version })
            }
            // Nothing of it was ever granted: the new text replaces the
            // old, still pending.
            Some((before, version)) if before.state == InstallState::Pending => {
                drop(checked);
                let after = Installed {
                    version: manifest.version.clone(),
                    manifest: manifest_text.to_owned(),
                    component_sha256: sha256.clone(),
                    component_bytes: component.len() as u64,
                    installed_at: now_ms(),
                    installed_by: actor.to_owned(),
                    last_error: None,
                    ..before.clone()
                };
                self.installed.change(&before, version, Some(&after), Some((&sha256, component)))?;
                Ok(Installation::New(after))
            }
            Some((before, version)) => {
                let granted = self.granted(&before)?;
                let delta = Delta::between(&granted, &manifest);
                let upgrade = PendingUpgrade {
                    version: manifest.version.clone(),
                    manifest: manifest_text.to_owned(),
                    component_sha256: sha256.clone(),
                    component_bytes: component.len() as u64,
                    submitted_at: now_ms(),
                    submitted_by: actor.to_owned(),
                };
                if delta.is_narrowing_only() {
                    let from = before.version.clone();
                    let record =
                        self.apply_upgrade(actor, &before, version, &upgrade, Some(component), checked)?;
                    return Ok(Installation::Upgraded { record, from, delta });
                }
                drop(checked); // the old version serves until approval
                let after = Installed { upgrade: Some(upgrade), ..before.clone() };
                self.installed.change(&before, version, Some(&after), Some((&sha256, component)))?;
                tracing::info!(
                    extension = id,
                    serving = before.version,
                    waiting = manifest.version,
                    by = actor,
                    "upgrade waits for approval: it widens what is granted"
                );
                Ok(Installation::Waiting { record: after, delta })
            }
        }
    }

    /// What installing `manifest_text` + `component` would do: the same
    /// checks as an install, and the delta against what is granted now.
    /// Writes nothing.
    pub fn preview(&self, manifest_text: &str, component: &[u8]) -> Result<Preview, LifecycleError> {
        let (manifest, checked) = self.check_new(manifest_text, component)?;
        drop(checked);
        let serving = self.installed.get(&manifest.id)?.filter(|(r, _)| r.state == InstallState::Approved);
        let (installed_version, granted, owned) = match &serving {
            Some((record, _)) => (Some(record.version.clone()), self.granted(record)?, owned_roles(record)),
            None => (None, Grants::default(), BTreeSet::new()),
        };
        policy::check_clashes(&manifest, &self.security.state().config, &owned)?;
        let delta = Delta::between(&granted, &manifest);
        Ok(Preview {
            id: manifest.id.clone(),
            installed_version,
            version: manifest.version.clone(),
            applies_at_once: serving.is_some() && delta.is_narrowing_only(),
            delta,
        })
    }

    /// Every check an install makes before writing: the manifest, and a
    /// full load of the component (returned, to serve at once when an
    /// upgrade applies).
    fn check_new(
        &self,
        manifest_text: &str,
        component: &[u8],
    ) -> Result<(Manifest, LoadedExtension), LifecycleError> {
        let dir = virtual_dir(None);
        let manifest = Manifest::parse(manifest_text, &dir, &dir.join(MANIFEST_FILE))?;
        let id = manifest.id.clone();
        if self.registry.origin(&id) == Some(Origin::Directory) {
            return Err(LifecycleError::FromDirectory(id));
        }
        let manifest = parse_installed(&id, manifest_text)?;
        let checked =
            LoadedExtension::from_bytes(&self.runtime, manifest.clone(), component, &self.data_dir)?;
        Ok((manifest, checked))
    }

    /// What approved `record` is granted now.
    fn granted(&self, record: &Installed) -> Result<Grants, LifecycleError> {
        let requested = Grants::of(&parse_installed(&record.id, &record.manifest)?);
        Ok(granted_of(record, &requested))
    }

    /// Approves extension `id`: a pending one is loaded, its roles and
    /// service account written, and serves from the next request on; an
    /// approved one with a pending upgrade gets the upgrade applied.
    ///
    /// `reviewed`: the review digest the operator saw (`review_digest` in
    /// the record, or `upgrade.review_digest`); when given and what waits
    /// is no longer that, nothing is approved.
    pub fn approve(&self, actor: &str, id: &str, reviewed: Option<&str>) -> Result<Approval, LifecycleError> {
        let _change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let (record, version) = self.installed.get(id)?.ok_or_else(|| self.not_found(id))?;
        if let (Some(reviewed), Some(now)) = (reviewed, record.awaiting_digest())
            && reviewed != now
        {
            return Err(LifecycleError::ChangedSinceReview {
                id: id.to_owned(),
                reviewed: reviewed.to_owned(),
                now,
            });
        }
        match (&record.state, &record.upgrade) {
            (InstallState::Pending, _) => {
                Ok(Approval { record: self.approve_pending(actor, record, version)?, upgraded_from: None })
            }
            (InstallState::Approved, Some(upgrade)) => {
                let upgrade = upgrade.clone();
                let manifest = parse_installed(id, &upgrade.manifest)?;
                let bytes = self.installed.component(&upgrade.component_sha256)?.ok_or_else(|| {
                    LifecycleError::MissingComponent {
                        id: id.to_owned(),
                        sha256: upgrade.component_sha256.clone(),
                    }
                })?;
                let loaded = LoadedExtension::from_bytes(&self.runtime, manifest, &bytes, &self.data_dir)?;
                let from = record.version.clone();
                let record = self.apply_upgrade(actor, &record, version, &upgrade, None, loaded)?;
                Ok(Approval { record, upgraded_from: Some(from) })
            }
            (state, None) => Err(LifecycleError::NotPending { id: id.to_owned(), state: state.as_str() }),
        }
    }

    /// Discards the upgrade of `id` that waits for approval: the serving
    /// version stays as it is; the waiting component's blob goes unless
    /// another record holds it. Returns the version discarded.
    pub fn discard_upgrade(&self, id: &str) -> Result<String, LifecycleError> {
        let _change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let (before, version) = self.installed.get(id)?.ok_or_else(|| self.not_found(id))?;
        let Some(upgrade) = &before.upgrade else {
            return Err(LifecycleError::NoUpgrade(id.to_owned()));
        };
        let after = Installed { upgrade: None, ..before.clone() };
        self.installed.change(&before, version, Some(&after), None)?;
        Ok(upgrade.version.clone())
    }

    /// Approves pending `record` (stored at `version`).
    fn approve_pending(
        &self,
        actor: &str,
        record: Installed,
        version: Version,
    ) -> Result<Installed, LifecycleError> {
        let id = record.id.clone();
        let extension = match self.load(&record) {
            Ok(extension) => extension,
            Err(e) => {
                // Kept for `show`: why approving failed (it stays pending).
                let error = e.to_string();
                let noted = self.installed.update::<InstalledError>(&id, |r| {
                    r.last_error = Some(error.clone());
                    Ok(())
                });
                if let Err(note) = noted {
                    tracing::warn!(extension = id, "cannot record the load error: {note}");
                }
                return Err(e);
            }
        };
        let clustered = extension.manifest.capabilities.contains(&Capability::Cluster);
        let after = Installed {
            state: InstallState::Approved,
            approved_at: Some(now_ms()),
            approved_by: Some(actor.to_owned()),
            last_error: None,
            ..record.clone()
        };
        // The policy role `extension:<id>`, the predefined roles, the
        // service account (when it requests `cluster`) and the approved
        // record: one transaction, so a failed approval leaves nothing.
        let writes = self.installed.change_writes(&record, version, Some(&after), None)?;
        let roles = policy::roles_of(&extension.manifest);
        let created = self
            .security
            .update_with(&writes, |config| {
                policy::check_clashes(&extension.manifest, config, &BTreeSet::new())?;
                config.roles.extend(roles);
                Ok::<_, LifecycleError>(if clustered {
                    service_accounts::add_missing(config, std::iter::once(id.as_str()))
                } else {
                    Vec::new()
                })
            })
            .map_err(|e| contended(&id, e))?;
        for account in created {
            tracing::info!(account, "service account created");
        }
        self.registry.insert_installed(Arc::new(extension));
        tracing::info!(extension = id, version = after.version, by = actor, "extension approved and serving");
        Ok(after)
    }

    /// Applies `upgrade` to approved `before` (stored at `version`), its
    /// component already checked and loaded as `loaded`; `blob`: its bytes
    /// when the store does not hold them yet. The record (grants back to
    /// the new request), the roles (the old version's that the new one no
    /// longer brings removed, with their mappings; the new ones written;
    /// the service account following the `cluster` capability) land in one
    /// transaction, then the registry swaps.
    fn apply_upgrade(
        &self,
        actor: &str,
        before: &Installed,
        version: Version,
        upgrade: &PendingUpgrade,
        blob: Option<&[u8]>,
        loaded: LoadedExtension,
    ) -> Result<Installed, LifecycleError> {
        let id = before.id.clone();
        let after = Installed {
            version: upgrade.version.clone(),
            manifest: upgrade.manifest.clone(),
            component_sha256: upgrade.component_sha256.clone(),
            component_bytes: upgrade.component_bytes,
            grants: None,
            upgrade: None,
            last_error: None,
            previous_version: Some(before.version.clone()),
            upgraded_at: Some(now_ms()),
            upgraded_by: Some(actor.to_owned()),
            ..before.clone()
        };
        let writes = self.installed.change_writes(
            before,
            version,
            Some(&after),
            blob.map(|bytes| (upgrade.component_sha256.as_str(), bytes)),
        )?;
        let owned = owned_roles(before);
        let roles = policy::roles_of(&loaded.manifest);
        let clustered = loaded.manifest.capabilities.contains(&Capability::Cluster);
        let account = service_accounts::name(&id);
        let dropped_mappings = self
            .security
            .update_with(&writes, |config| {
                policy::check_clashes(&loaded.manifest, config, &owned)?;
                let mut dropped = Vec::new();
                for name in owned.iter().filter(|name| !roles.contains_key(*name)) {
                    config.roles.remove(name);
                    if config.roles_mapping.remove(name).is_some() {
                        dropped.push(name.clone());
                    }
                }
                config.roles.extend(roles);
                if clustered {
                    service_accounts::add_missing(config, std::iter::once(id.as_str()));
                } else {
                    config.internal_users.remove(&account);
                }
                Ok::<_, LifecycleError>(dropped)
            })
            .map_err(|e| contended(&id, e))?;
        for mapping in dropped_mappings {
            tracing::warn!(
                extension = id,
                "role mapping `{mapping}` was removed with the role the upgrade of `{id}` no longer brings"
            );
        }
        self.registry.insert_installed(Arc::new(loaded));
        tracing::info!(
            extension = id,
            from = before.version,
            to = after.version,
            by = actor,
            "extension upgraded and serving"
        );
        Ok(after)
    }

    /// Removes installed extension `id`: forgotten by the registry first
    /// (its routes 404 at once), its record and blob deleted, its jobs
    /// suspended (kept, listed, with the reason), its service account removed.
    pub fn remove(&self, actor: &str, id: &str, purge: bool) -> Result<Removal, LifecycleError> {
        let _change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        if self.registry.origin(id) == Some(Origin::Directory) {
            return Err(LifecycleError::FromDirectory(id.to_owned()));
        }
        let (record, version) = self.installed.get(id)?.ok_or_else(|| self.not_found(id))?;
        self.installed.delete(&record, version)?;
        self.registry.remove_installed(id);
        let mut removal = Removal { record: Some(record), ..Removal::default() };
        if let Some(scheduler) = &self.scheduler {
            let reason = format!("extension `{id}` was removed by `{actor}`");
            removal.suspended_jobs = scheduler
                .jobs()
                .suspend_removed(id, &reason, now_ms())
                .map_err(|e| LifecycleError::Jobs { id: id.to_owned(), message: e.to_string() })?;
        }
        // Consents were to this extension: a later one under the id is
        // other code, and its users consent to it anew.
        if let Some(consents) = self.security.consents() {
            let by = format!("extension `{id}` was removed by `{actor}`");
            match consents.revoke_all_to(id, &by, now_ms()) {
                Ok(revoked) => {
                    self.security.audit_revoked_consents(&revoked, &by);
                    removal.consents_revoked = revoked.into_iter().map(|c| c.id).collect();
                }
                Err(e) => {
                    return Err(LifecycleError::Jobs {
                        id: id.to_owned(),
                        message: format!("cannot revoke its consents: {e}"),
                    });
                }
            }
        }
        let account = service_accounts::name(id);
        // Only an approved extension's roles are its: approval wrote them. A
        // pending (or refused) one never did, and a role of the same name is
        // someone else's.
        let brought: Vec<String> = removal
            .record
            .as_ref()
            .filter(|r| r.state == InstallState::Approved)
            .map(|r| owned_roles(r).into_iter().collect())
            .unwrap_or_default();
        let (account_removed, roles_removed, mappings_removed) = self
            .security
            .update(|config| {
                let account_removed = config.internal_users.remove(&account).is_some();
                let removed: Vec<String> =
                    brought.iter().filter(|name| config.roles.remove(*name).is_some()).cloned().collect();
                let left: Vec<String> = removed
                    .iter()
                    .filter(|name| config.roles_mapping.remove(*name).is_some())
                    .cloned()
                    .collect();
                // Its services_mappings entries go too: a later extension
                // installed under the same id must not inherit them.
                let mut widened = Vec::new();
                for (role, mapping) in &mut config.roles_mapping {
                    if mapping.services_mappings.remove(id).is_some() {
                        widened.push(role.clone());
                    }
                }
                if !widened.is_empty() {
                    tracing::warn!(extension = id, roles = ?widened, "services_mappings entries removed with the extension");
                }
                Ok::<_, SecurityWriteError>((account_removed, removed, left))
            })
            .map_err(|source| LifecycleError::Account { id: id.to_owned(), source })?;
        for mapping in &mappings_removed {
            tracing::warn!(
                extension = id,
                "role mapping `{mapping}` was removed with extension `{id}`'s role of that name; the users and backend roles it mapped no longer hold it"
            );
        }
        removal.service_account_removed = account_removed;
        removal.roles_removed = roles_removed;
        removal.mappings_removed = mappings_removed;
        if purge {
            removal.indices_deleted = self.purge(id)?;
        }
        tracing::info!(extension = id, by = actor, purge, "extension removed");
        Ok(removal)
    }

    /// The operator narrows (or widens back, up to the manifest's request)
    /// what approved extension `id` is granted: its capabilities (checked
    /// by every host call from the next invocation on, no reload) and its
    /// policy (its policy role `extension:<id>`, which the service gate
    /// reads at every call). Recorded with compare-and-set.
    pub fn set_grants(
        &self,
        id: &str,
        capabilities: BTreeSet<String>,
        policy: Policy,
    ) -> Result<Installed, LifecycleError> {
        let _change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let (record, _) = self.installed.get(id)?.ok_or_else(|| self.not_found(id))?;
        if record.state != InstallState::Approved {
            return Err(LifecycleError::NotApproved { id: id.to_owned(), state: record.state.as_str() });
        }
        let manifest = parse_installed(id, &record.manifest)?;
        let requested = Grants::of(&manifest);
        let new = Grants { capabilities, policy, ..requested.clone() };
        if let Some(unknown) = new.capabilities.iter().find(|c| !requested.capabilities.contains(*c)) {
            return Err(LifecycleError::BeyondRequest {
                id: id.to_owned(),
                beyond: format!("the `{unknown}` capability is not requested"),
            });
        }
        let beyond = Delta::of(id, &requested, &new);
        if !beyond.is_narrowing_only() {
            return Err(LifecycleError::BeyondRequest { id: id.to_owned(), beyond: beyond.to_string() });
        }
        let (name, role) = policy::policy_role(&Manifest { policy: new.policy.clone(), ..manifest });
        self.security.update(|config| {
            config.roles.insert(name, role);
            Ok::<_, LifecycleError>(())
        })?;
        let record = self.installed.update(id, |r| {
            r.grants = Some(new.clone());
            Ok::<_, LifecycleError>(())
        })?;
        if let Some(extension) = self.registry.get(id) {
            extension.set_grants(new.capability_set())?;
        }
        Ok(record)
    }

    /// Deletes extension `id`'s own indices (its service namespace: the
    /// only indices that are its alone; what it wrote into users' indices
    /// is theirs and stays).
    fn purge(&self, id: &str) -> Result<Vec<String>, LifecycleError> {
        let Some(cluster) = &self.cluster else { return Ok(Vec::new()) };
        let backend = cluster.backend();
        let purge_error = |message: String| LifecycleError::Purge { id: id.to_owned(), message };
        let own: Vec<String> = backend
            .indices()
            .map_err(|e| purge_error(e.to_string()))?
            .into_iter()
            .filter(|index| is_own_index(id, index))
            .collect();
        let mut deleted = Vec::new();
        for index in own {
            let request = actions::resolve("DELETE", &format!("/{index}"), None)
                .map_err(|e| purge_error(e.to_string()))?;
            let reply = backend.execute(&request, std::slice::from_ref(&index), &Params::default(), None);
            if reply.status != 200 {
                return Err(purge_error(format!(
                    "deleting `{index}` answered {}: {}",
                    reply.status, reply.body
                )));
            }
            deleted.push(index);
        }
        Ok(deleted)
    }

    /// The permission review of an installed record (what it asks for, in
    /// plain words: the operator reads it before approving), with what it
    /// requests and what it is granted now, from one parse of its manifest.
    pub fn describe(&self, record: &Installed) -> Result<Described, LifecycleError> {
        let manifest = parse_installed(&record.id, &record.manifest)?;
        let requested = Grants::of(&manifest);
        let granted = granted_of(record, &requested);
        let upgrade_delta = match &record.upgrade {
            Some(upgrade) => Some(Delta::between(&granted, &parse_installed(&record.id, &upgrade.manifest)?)),
            None => None,
        };
        Ok(Described { review: Review::new(&manifest, None), requested, granted, upgrade_delta })
    }

    /// The missing-permission report of installed extension `id`: against
    /// the security configuration now when approved (with the owners of its
    /// jobs that will run, as the scheduler resolves them), against the
    /// roles its approval would write when pending.
    pub fn check(&self, id: &str) -> Result<crate::extensions::check::CheckReport, LifecycleError> {
        use crate::extensions::check;
        let record = self.get(id)?;
        let manifest = parse_installed(&record.id, &record.manifest)?;
        let state = self.security.state();
        Ok(match record.state {
            InstallState::Pending => check::report_on_approval(&manifest, &state.config),
            InstallState::Approved => {
                let report = check::report(&manifest, &state);
                match &self.scheduler {
                    Some(scheduler) => report.with_jobs(&manifest, scheduler.job_owners(id)),
                    None => report,
                }
            }
        })
    }

    /// Installed extension `id`'s record.
    pub fn get(&self, id: &str) -> Result<Installed, LifecycleError> {
        self.find(id)?.ok_or_else(|| self.not_found(id))
    }

    /// Installed extension `id`'s record, if there is one.
    pub fn find(&self, id: &str) -> Result<Option<Installed>, LifecycleError> {
        Ok(self.installed.get(id)?.map(|(record, _)| record))
    }

    /// Every installed extension's record.
    pub fn list(&self) -> Result<Vec<Installed>, LifecycleError> {
        Ok(self.installed.list()?)
    }

    fn not_found(&self, id: &str) -> LifecycleError {
        LifecycleError::Store(InstalledError::NotFound(id.to_owned()))
    }

    fn load(&self, record: &Installed) -> Result<LoadedExtension, LifecycleError> {
        load_record(&self.installed, &self.runtime, &self.data_dir, record)
    }
}

/// What `record` is granted, given what its manifest requests: the
/// operator's grants when narrowed, else the request. Limits are always the
/// manifest's (grants never narrow them; records from before limits were
/// compared hold none), so the upgrade view and the upgrade itself compare
/// the same thing.
fn granted_of(record: &Installed, requested: &Grants) -> Grants {
    match &record.grants {
        Some(grants) => Grants { limits: requested.limits, ..grants.clone() },
        None => requested.clone(),
    }
}

/// The roles approved `record`'s version brought (its policy role and
/// predefined roles): an upgrade may keep or drop them.
fn owned_roles(record: &Installed) -> BTreeSet<String> {
    parse_installed(&record.id, &record.manifest)
        .map(|manifest| policy::roles_of(&manifest).into_keys().collect())
        .unwrap_or_default()
}

/// A lifecycle write that lost a race with another writer of the record
/// or the security configuration: the operator retries.
fn contended(id: &str, e: LifecycleError) -> LifecycleError {
    match e {
        LifecycleError::RolesWrite(SecurityWriteError::Conflict(_)) => {
            LifecycleError::Store(InstalledError::Contended(id.to_owned()))
        }
        e => e,
    }
}

/// Parses an installed extension's manifest, its files named under
/// `installed/<id>/`.
fn parse_installed(id: &str, text: &str) -> Result<Manifest, LifecycleError> {
    let dir = virtual_dir(Some(id));
    Ok(Manifest::parse(text, &dir, &dir.join(MANIFEST_FILE))?)
}

fn load_record(
    installed: &InstalledStore,
    runtime: &Runtime,
    data_dir: &Path,
    record: &Installed,
) -> Result<LoadedExtension, LifecycleError> {
    let manifest = parse_installed(&record.id, &record.manifest)?;
    let bytes = installed.component(&record.component_sha256)?.ok_or_else(|| {
        LifecycleError::MissingComponent { id: record.id.clone(), sha256: record.component_sha256.clone() }
    })?;
    let extension = LoadedExtension::from_bytes(runtime, manifest, &bytes, data_dir)?;
    if let Some(grants) = &record.grants {
        extension.set_grants(grants.capability_set())?;
    }
    Ok(extension)
}

/// At start: every installed extension joins `registry` — approved ones
/// loaded (from the compile cache when warm), pending ones as pending. One
/// that fails is recorded (health shows it) and the others still serve.
pub fn load_installed(installed: &InstalledStore, runtime: &Runtime, registry: &Registry, data_dir: &Path) {
    let records = match installed.list() {
        Ok(records) => records,
        Err(e) => {
            tracing::error!("installed extensions not loaded: {e}");
            return;
        }
    };
    for record in records {
        let failure = |error: String| LoadFailure {
            dir: virtual_dir(Some(&record.id)),
            id: Some(record.id.clone()),
            error,
            origin: Origin::Installed,
        };
        if registry.origin(&record.id).is_some() {
            let error = format!(
                "installed extension `{}` not loaded: the extensions directory holds one with the same id",
                record.id
            );
            tracing::error!("{error}");
            registry.record_failure(failure(error));
            continue;
        }
        match record.state {
            InstallState::Pending => registry.set_pending(&record.id),
            InstallState::Approved => match load_record(installed, runtime, data_dir, &record) {
                Ok(extension) => {
                    tracing::info!(
                        extension = record.id,
                        version = record.version,
                        cache = ?extension.cache,
                        "installed extension loaded"
                    );
                    registry.insert_installed(Arc::new(extension));
                }
                Err(e) => {
                    let error = e.to_string();
                    tracing::error!("installed extension not loaded: {error}");
                    registry.record_failure(failure(error));
                }
            },
        }
    }
}
