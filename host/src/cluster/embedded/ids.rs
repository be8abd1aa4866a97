//! Generated document ids (`POST /<index>/_doc`, bulk items without
//! `_id`): 20 characters that sort in creation order, so new documents are
//! appended to the store's B-tree instead of landing on random pages.

use std::sync::atomic::{AtomicU32, Ordering};

/// 48 bits of milliseconds, 24 bits of a counter (ids made in the same
/// millisecond still sort in creation order), 48 random bits.
pub(super) fn generated_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = crate::time::now_ms();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 15];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..9].copy_from_slice(&count.to_be_bytes()[1..]);
    let _ = getrandom::fill(&mut bytes[9..]);
    sortable_base64(&bytes)
}

/// Base64 with an alphabet in ASCII order, so the text sorts like the bytes.
fn sortable_base64(bytes: &[u8; 15]) -> String {
    const ALPHABET: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(20);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_unique_and_sort_in_creation_order() {
        let ids: Vec<String> = (0..2000).map(|_| generated_id()).collect();
        assert!(ids.iter().all(|id| id.len() == 20 && !id.contains(['/', '+', '='])), "{ids:?}");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "not in creation order");
    }
}
