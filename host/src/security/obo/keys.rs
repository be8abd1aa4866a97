//! The OBO key ring: one current key pair (signs and verifies) and older
//! ones that still verify until their `retire_after`, so a rotation never
//! breaks a live token.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::TokenError;

/// One signing + encryption key pair.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyPair {
    pub kid: String,
    /// 64 bytes for HS512, base64.
    signing: String,
    /// 32 bytes for AES-256-GCM, base64.
    encryption: String,
    /// Unix seconds after which a retired key no longer verifies.
    #[serde(default)]
    pub retire_after: Option<u64>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair").field("kid", &self.kid).field("retire_after", &self.retire_after).finish()
    }
}

impl KeyPair {
    pub fn generate() -> Result<KeyPair, TokenError> {
        let mut signing = [0u8; 64];
        let mut encryption = [0u8; 32];
        let mut kid = [0u8; 8];
        for buf in [&mut signing[..], &mut encryption[..], &mut kid[..]] {
            getrandom::fill(buf).map_err(|e| TokenError::Internal(format!("no randomness: {e}")))?;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(KeyPair {
            kid: hex::encode(kid),
            signing: b64.encode(signing),
            encryption: b64.encode(encryption),
            retire_after: None,
        })
    }

    /// The (signing, encryption) key bytes.
    pub(super) fn bytes(&self) -> Result<(Vec<u8>, Vec<u8>), TokenError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let bad = |_| TokenError::Internal(format!("key {} is corrupt", self.kid));
        Ok((b64.decode(&self.signing).map_err(bad)?, b64.decode(&self.encryption).map_err(bad)?))
    }
}

/// The keys: one current (signs and verifies), older ones verifying until
/// their `retire_after`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRing {
    pub current: KeyPair,
    #[serde(default)]
    pub previous: Vec<KeyPair>,
}

impl KeyRing {
    pub fn generate() -> Result<KeyRing, TokenError> {
        Ok(KeyRing { current: KeyPair::generate()?, previous: Vec::new() })
    }

    /// A new current key; the old one verifies for `grace` more seconds
    /// (at least the longest token lifetime, so no live token breaks).
    pub fn rotate(&mut self, now: u64, grace: u64) -> Result<(), TokenError> {
        let mut old = std::mem::replace(&mut self.current, KeyPair::generate()?);
        old.retire_after = Some(now + grace);
        self.previous.retain(|k| k.retire_after.is_some_and(|t| t > now));
        self.previous.push(old);
        Ok(())
    }

    /// The key named `kid` that still verifies at `now`.
    pub(super) fn find(&self, kid: &str, now: u64) -> Option<&KeyPair> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid && k.retire_after.is_none_or(|t| now <= t))
    }
}
