//! Where the OBO key ring and the revocation list are kept: two documents
//! of the system index `.warden-tokens` in the embedded store.

use std::sync::Arc;

use super::{KeyRing, LEEWAY, MAX_LIFETIME, Revocations, TokenError, TokenService};
use crate::store::{Expect, Store, StoreError, Write};
use crate::time::now_secs;

/// Where keys and revocations are kept.
pub const STORE_INDEX: &str = ".warden-tokens";

impl TokenService {
    /// Loads the key ring and revocations from the store, generating and
    /// keeping a key ring on first start.
    pub fn load_or_create(store: &Arc<Store>, issuer: &str) -> Result<TokenService, TokenError> {
        let internal = |e: StoreError| TokenError::Internal(e.to_string());
        let keys = match store.get(STORE_INDEX, "keys").map_err(internal)? {
            Some(doc) => serde_json::from_slice(&doc.source)
                .map_err(|e| TokenError::Internal(format!("stored token keys are corrupt: {e}")))?,
            None => {
                let ring = KeyRing::generate()?;
                let source = serde_json::to_vec(&ring).map_err(|e| TokenError::Internal(e.to_string()))?;
                store
                    .write(&[Write {
                        index: STORE_INDEX,
                        id: "keys",
                        source: Some(source),
                        expect: Expect::Absent,
                    }])
                    .map_err(internal)?;
                ring
            }
        };
        let revocations = match store.get(STORE_INDEX, "revocations").map_err(internal)? {
            Some(doc) => serde_json::from_slice(&doc.source)
                .map_err(|e| TokenError::Internal(format!("stored revocations are corrupt: {e}")))?,
            None => Revocations::default(),
        };
        let mut service = TokenService::new(issuer, keys, revocations);
        service.store = Some(store.clone());
        Ok(service)
    }

    /// A new signing key; the old one still verifies for the longest token
    /// lifetime, so no live token breaks. Kept in the store when there is one.
    pub fn rotate_keys(&self) -> Result<String, TokenError> {
        let mut ring = self.keys();
        ring.rotate(now_secs(), MAX_LIFETIME + LEEWAY)?;
        if let Some(store) = &self.store {
            let source = serde_json::to_vec(&ring).map_err(|e| TokenError::Internal(e.to_string()))?;
            store
                .write(&[Write { index: STORE_INDEX, id: "keys", source: Some(source), expect: Expect::Any }])
                .map_err(|e| TokenError::Internal(e.to_string()))?;
        }
        let kid = ring.current.kid.clone();
        self.set_keys(ring);
        Ok(kid)
    }

    /// Writes the revocation list to the store.
    pub(super) fn persist_revocations(&self, store: &Store) -> Result<(), TokenError> {
        let source =
            serde_json::to_vec(&self.revocations()).map_err(|e| TokenError::Internal(e.to_string()))?;
        store
            .write(&[Write {
                index: STORE_INDEX,
                id: "revocations",
                source: Some(source),
                expect: Expect::Any,
            }])
            .map_err(|e| TokenError::Internal(e.to_string()))?;
        Ok(())
    }
}
