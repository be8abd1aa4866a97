//! Sealed claims: the roles, backend roles and attributes an OBO token
//! carries are encrypted (AES-256-GCM under a fresh nonce) so the token
//! leaks nothing and any tampering fails authentication.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;

use super::TokenError;

/// base64(nonce ‖ AES-256-GCM(plaintext)).
pub(super) fn seal(key: &[u8], plaintext: &str) -> Result<String, TokenError> {
    let cipher =
        Aes256Gcm::new_from_slice(key).map_err(|_| TokenError::Internal("bad encryption key".into()))?;
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| TokenError::Internal(format!("no randomness: {e}")))?;
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
        .map_err(|_| TokenError::Internal("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

/// The plaintext of a sealed claim; `None` when it does not decrypt
/// (tampered, or sealed under another key).
pub(super) fn open(key: &[u8], sealed: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).ok()?;
    if bytes.len() < 12 {
        return None;
    }
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let plain = cipher.decrypt(Nonce::from_slice(&bytes[..12]), &bytes[12..]).ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_claims_open_only_under_their_key() -> Result<(), TokenError> {
        let (key, other) = ([7u8; 32], [8u8; 32]);
        let sealed = seal(&key, "analyst_role")?;
        assert_eq!(open(&key, &sealed).as_deref(), Some("analyst_role"));
        assert_eq!(open(&other, &sealed), None);
        assert_ne!(seal(&key, "analyst_role")?, sealed, "a fresh nonce each time");
        assert_eq!(open(&key, "AAAA"), None);
        Ok(())
    }
}
