//! Freshness and replay (PROTOCOL.md §4.3 steps 3 and 5).

use crate::{Address, B256, Error, Result, keccak256};

/// Freshness: accepts iff `head - window <= block <= head`.
///
/// Computed as `block <= head && head - block <= window`, which cannot overflow: near
/// genesis (`head < window`) every block up to `head` is fresh, and a `window` of
/// `u64::MAX` accepts every block up to `head`.
///
/// # Errors
/// [`Error::FromTheFuture`] when `block > head` (the verifier's view lags or the request
/// is forged ahead), [`Error::Stale`] when `block < head - window`.
pub fn check_freshness(block: u64, head: u64, window: u64) -> Result<()> {
    match head.checked_sub(block) {
        None => Err(Error::FromTheFuture { block, head }),
        Some(age) if age > window => Err(Error::Stale { block, head, window }),
        Some(_) => Ok(()),
    }
}

/// The replay-protection key of a verified request: `keccak256(signer || digest)`.
///
/// Never derived from the signature bytes: ECDSA signatures are malleable (`(r, n - s)`
/// with the other `v` is also valid, and an EIP-1271 contract may accept many encodings),
/// so a key over the signature would let one signed request be accepted once per encoding.
/// The digest is what the signer approved, and it binds the chain (domain or `chainId`),
/// the contract, the request's fields and, for typed requests, the nonce.
#[must_use]
pub fn replay_key(signer: &Address, digest: &B256) -> B256 {
    let mut data = [0u8; 20 + 32];
    data[..20].copy_from_slice(signer);
    data[20..].copy_from_slice(digest);
    keccak256(&data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn freshness_is_the_protocol_inequality(block: u64, head: u64, window: u64) {
            // head - W <= block <= head, in exact (u128) arithmetic.
            let fresh = i128::from(head) - i128::from(window) <= i128::from(block) && block <= head;
            prop_assert_eq!(check_freshness(block, head, window).is_ok(), fresh);
        }
    }

    #[test]
    fn freshness_window() {
        assert_eq!(check_freshness(90, 100, 10), Ok(()));
        assert_eq!(check_freshness(100, 100, 10), Ok(()));
        assert_eq!(check_freshness(95, 100, 10), Ok(()));
        assert_eq!(
            check_freshness(89, 100, 10),
            Err(Error::Stale { block: 89, head: 100, window: 10 })
        );
        assert_eq!(
            check_freshness(101, 100, 10),
            Err(Error::FromTheFuture { block: 101, head: 100 })
        );
        assert_eq!(check_freshness(100, 100, 0), Ok(()));
        assert_eq!(
            check_freshness(99, 100, 0),
            Err(Error::Stale { block: 99, head: 100, window: 0 })
        );
    }

    #[test]
    fn freshness_extremes() {
        // Genesis: head - W would underflow.
        assert_eq!(check_freshness(0, 0, 0), Ok(()));
        assert_eq!(check_freshness(0, 0, 10), Ok(()));
        assert_eq!(check_freshness(0, 5, 10), Ok(()));
        assert_eq!(check_freshness(1, 0, 10), Err(Error::FromTheFuture { block: 1, head: 0 }));
        assert_eq!(
            check_freshness(u64::MAX, 0, u64::MAX),
            Err(Error::FromTheFuture { block: u64::MAX, head: 0 })
        );
        // Top of the range.
        assert_eq!(check_freshness(u64::MAX, u64::MAX, 0), Ok(()));
        assert_eq!(check_freshness(0, u64::MAX, u64::MAX), Ok(()));
        assert_eq!(
            check_freshness(0, u64::MAX, u64::MAX - 1),
            Err(Error::Stale { block: 0, head: u64::MAX, window: u64::MAX - 1 })
        );
        assert_eq!(check_freshness(u64::MAX - 1, u64::MAX, 1), Ok(()));
        assert_eq!(
            check_freshness(u64::MAX - 2, u64::MAX, 1),
            Err(Error::Stale { block: u64::MAX - 2, head: u64::MAX, window: 1 })
        );
    }

    #[test]
    fn replay_key_binds_signer_and_digest() {
        let key = replay_key(&[1; 20], &[2; 32]);
        let mut data = vec![1u8; 20];
        data.extend_from_slice(&[2; 32]);
        assert_eq!(key, keccak256(&data));
        assert_ne!(key, replay_key(&[3; 20], &[2; 32]));
        assert_ne!(key, replay_key(&[1; 20], &[3; 32]));
    }
}
