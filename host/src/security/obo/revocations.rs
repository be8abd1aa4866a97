//! Revocations: by token id, and "everything issued before T" by user and
//! by extension; plus when an internal user of a name was last deleted.
//! Every change is applied at once and then persisted (see `persist`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{LEEWAY, TokenError, TokenService};
use crate::time::{now_ms, now_secs};

/// Revocations: by token id, and "everything issued before T" by user and
/// by extension.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revocations {
    pub jtis: BTreeMap<String, u64>,
    pub users_before: BTreeMap<String, u64>,
    pub extensions_before: BTreeMap<String, u64>,
    /// When an internal user of this name was last deleted (milliseconds):
    /// whatever was made for them before — tokens, jobs — belongs to
    /// someone else than a new user who takes the name later.
    #[serde(default)]
    pub users_deleted: BTreeMap<String, u64>,
}

impl Revocations {
    pub(super) fn check(
        &self,
        jti: &str,
        user: &str,
        extension: &str,
        issued_at: u64,
    ) -> Result<(), TokenError> {
        if self.jtis.contains_key(jti) {
            return Err(TokenError::Revoked(format!("`{jti}`")));
        }
        if self.users_before.get(user).is_some_and(|t| issued_at <= *t) {
            return Err(TokenError::Revoked(format!("for user `{user}`")));
        }
        if self.extensions_before.get(extension).is_some_and(|t| issued_at <= *t) {
            return Err(TokenError::Revoked(format!("for extension `{extension}`")));
        }
        Ok(())
    }

    /// Drops jti entries of tokens that have expired anyway.
    pub fn prune(&mut self, now: u64) {
        self.jtis.retain(|_, exp| *exp + LEEWAY >= now);
    }
}

/// Moves `key`'s revocation time to now, or one past the later of its own
/// previous one and the latest of the other kind (users for an extension,
/// extensions for a user): a token minted after a revocation in the same
/// second carries the next second as its `iat`
/// ([`TokenService::issue_time`]), so after a burst the times run ahead of
/// the clock, and a token's `iat` with them. A revocation of its extension
/// dated by the clock, or one past that extension's own last revocation,
/// would miss a token stamped ahead by its user's (the crash test of OBO
/// revocations found one). Only the other kind counts: a burst for one
/// user does not move another user's revocations (nor their API tokens'
/// `created_at`) ahead.
fn revoke_before(revocations: &mut Revocations, by_user: bool, key: &str) {
    let (own, other) = if by_user {
        (&revocations.users_before, &revocations.extensions_before)
    } else {
        (&revocations.extensions_before, &revocations.users_before)
    };
    let latest = [own.get(key), other.values().max()].into_iter().flatten().max();
    let at = latest.map_or(now_secs(), |latest| now_secs().max(latest + 1));
    let map = if by_user { &mut revocations.users_before } else { &mut revocations.extensions_before };
    map.insert(key.to_owned(), at);
}

impl TokenService {
    pub fn revocations(&self) -> Revocations {
        self.revocations.read().map(|r| r.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    pub fn set_revocations(&self, revocations: Revocations) {
        match self.revocations.write() {
            Ok(mut r) => *r = revocations,
            Err(p) => *p.into_inner() = revocations,
        }
    }

    /// Up to when `user`'s tokens are revoked (API tokens check this too).
    pub fn revoked_user_before(&self, user: &str) -> Option<u64> {
        match self.revocations.read() {
            Ok(r) => r.users_before.get(user).copied(),
            Err(p) => p.into_inner().users_before.get(user).copied(),
        }
    }

    /// Revokes one token (until it would have expired anyway).
    pub fn revoke_jti(&self, jti: &str, expires_at: u64) -> Result<(), TokenError> {
        self.edit_revocations(|r| {
            r.jtis.insert(jti.to_owned(), expires_at);
        })
    }

    /// Revokes every token issued to `user` up to now — including those
    /// stamped with the next second after an earlier revocation in this
    /// one (see [`TokenService::issue_time`]).
    pub fn revoke_user(&self, user: &str) -> Result<(), TokenError> {
        self.edit_revocations(|r| revoke_before(r, true, user))
    }

    /// Revokes every token of `user` and records the deletion: a new user
    /// who takes the name later inherits nothing.
    pub fn record_deletion(&self, user: &str) -> Result<(), TokenError> {
        let at = now_ms();
        self.edit_revocations(|r| {
            revoke_before(r, true, user);
            r.users_deleted.insert(user.to_owned(), at);
        })
    }

    /// When an internal user named `user` was last deleted (milliseconds).
    pub fn deleted_at(&self, user: &str) -> Option<u64> {
        match self.revocations.read() {
            Ok(r) => r.users_deleted.get(user).copied(),
            Err(p) => p.into_inner().users_deleted.get(user).copied(),
        }
    }

    /// Revokes every token issued for `extension` up to now.
    pub fn revoke_extension(&self, extension: &str) -> Result<(), TokenError> {
        self.edit_revocations(|r| revoke_before(r, false, extension))
    }

    /// Applies a revocation now, then persists the list; an error means
    /// it holds in this process but would not survive a restart.
    fn edit_revocations(&self, edit: impl FnOnce(&mut Revocations)) -> Result<(), TokenError> {
        crate::metrics::token(crate::metrics::TokenKind::Obo, crate::metrics::TokenEvent::Revoked);
        // One revocation at a time from edit to write, so the snapshots
        // reach the store in the order they were taken.
        let _persisting = self.persisting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.revocations.write() {
            Ok(mut r) => {
                edit(&mut r);
                r.prune(now_secs());
            }
            Err(p) => edit(&mut p.into_inner()),
        }
        match &self.store {
            Some(store) => self.persist_revocations(store),
            None => Ok(()),
        }
    }
}
