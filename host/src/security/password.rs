//! Password hashes (bcrypt, as OpenSearch's internal users carry them —
//! `$2a$`, `$2b$`, `$2y$`), the strength rule for new passwords, and
//! generated passwords.

/// bcrypt cost for new hashes (OpenSearch's tools use 12).
pub const BCRYPT_COST: u32 = 12;

/// The highest bcrypt cost accepted in a stored hash: each step doubles the
/// work, and cost 31 would keep a core busy for days per login attempt.
pub const MAX_BCRYPT_COST: u32 = 14;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password is too weak: {0}")]
    Weak(String),
    #[error("cannot hash password: {0}")]
    Hash(String),
    #[error("cannot generate a password: {0}")]
    Random(String),
}

impl crate::error::HasKind for PasswordError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            PasswordError::Weak(_) => crate::error::ErrorKind::Invalid,
            PasswordError::Hash(_) | PasswordError::Random(_) => crate::error::ErrorKind::Internal,
        }
    }
}

/// True when `password` matches `hash`. A hash in a format Warden does not
/// know, or costlier than [`MAX_BCRYPT_COST`], never matches (and costs
/// nothing to refuse).
pub fn verify(password: &str, hash: &str) -> bool {
    match cost(hash) {
        Some(cost) if cost <= MAX_BCRYPT_COST => bcrypt::verify(password, hash).unwrap_or(false),
        _ => false,
    }
}

/// The cost of a bcrypt hash (`$2a$12$...` → 12); `None` when `hash` is not
/// bcrypt.
pub fn cost(hash: &str) -> Option<u32> {
    let rest = hash.strip_prefix("$2")?;
    let mut parts = rest.splitn(3, '$');
    let variant = parts.next()?;
    let cost = parts.next()?;
    if !matches!(variant, "a" | "b" | "x" | "y") || cost.len() != 2 {
        return None;
    }
    cost.parse().ok()
}

pub fn hash(password: &str) -> Result<String, PasswordError> {
    bcrypt::hash(password, BCRYPT_COST).map_err(|e| PasswordError::Hash(e.to_string()))
}

/// At least 12 characters from at least 3 of: lower case, upper case,
/// digits, symbols; and not the user name.
pub fn check_strength(user: &str, password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < 12 {
        return Err(PasswordError::Weak("use at least 12 characters".into()));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|c| **c).count() < 3 {
        return Err(PasswordError::Weak(
            "mix at least three of lower case, upper case, digits and symbols".into(),
        ));
    }
    if password.eq_ignore_ascii_case(user) {
        return Err(PasswordError::Weak("must not be the user name".into()));
    }
    Ok(())
}

/// A random password that passes [`check_strength`].
pub fn generate() -> Result<String, PasswordError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| PasswordError::Random(e.to_string()))?;
    let body: String = bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect();
    // Guarantee the classes regardless of the draw.
    Ok(format!("{body}-Aa7"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opensearch_demo_hashes_verify_as_they_are() {
        // From OpenSearch's demo internal_users.yml: admin/admin ($2a$) and snapshotrestore ($2y$).
        assert!(verify("admin", "$2a$12$VcCDgh2NDk07JGN0rjGbM.Ad41qVR/YFJcgHp0UGns5JDymv..TOG"));
        assert!(!verify("Admin", "$2a$12$VcCDgh2NDk07JGN0rjGbM.Ad41qVR/YFJcgHp0UGns5JDymv..TOG"));
        assert!(verify("snapshotrestore", "$2y$12$DpwmetHKwgYnorbgdvORCenv4NAK8cPUg8AI6pxLCuWf/ALc0.v7W"));
        assert!(!verify("x", "plaintext"));
    }

    #[test]
    fn costs_are_read_and_capped() {
        assert_eq!(cost("$2a$12$VcCDgh2NDk07JGN0rjGbM.Ad41qVR/YFJcgHp0UGns5JDymv..TOG"), Some(12));
        assert_eq!(cost("$2y$31$abc"), Some(31));
        assert_eq!(cost("$2q$12$abc"), None);
        assert_eq!(cost("plaintext"), None);
        // Refused without running bcrypt: a cost-31 verification would not return.
        assert!(!verify("admin", "$2a$31$VcCDgh2NDk07JGN0rjGbM.Ad41qVR/YFJcgHp0UGns5JDymv..TOG"));
    }

    #[test]
    fn strength_rules() {
        assert!(check_strength("admin", "short").is_err());
        assert!(check_strength("admin", "alllowercaseletters").is_err());
        assert!(check_strength("admin", "Correct-Horse-42").is_ok());
        assert!(check_strength("Correct-Horse-42", "correct-horse-42").is_err());
        for _ in 0..20 {
            let p = generate().unwrap_or_default();
            assert!(check_strength("admin", &p).is_ok(), "{p}");
        }
    }
}
