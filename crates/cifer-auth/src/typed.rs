//! The typed request (PROTOCOL.md §4.2, EIP-712), encoded by hand.
//!
//! ```text
//! domain = { name: "CIFER", version: "1", chainId, verifyingContract: SecretsController }
//! DecryptRequest(uint256 secretId,address requester,uint64 blockNumber,
//!                bytes32 envelopeHash,bytes32 responseKeyHash,bytes32 nonce)
//! digest = keccak256(0x19 0x01 || domainSeparator || structHash)
//! ```
//!
//! Every member is a static type, so `encodeData` is each value as one 32-byte ABI word
//! (addresses and `uint64` left-padded with zeros). [`TypedRequest::digest`] equals
//! `SecretsController.hashDecryptRequest` on the named chain and contract.

use crate::{Address, B256, U256, keccak256};

/// The EIP-712 type string of the domain.
pub const EIP712_DOMAIN_TYPE: &str =
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";

/// `keccak256(EIP712_DOMAIN_TYPE)`.
pub const EIP712_DOMAIN_TYPEHASH: B256 =
    hex32(b"8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f");

/// The EIP-712 type string of the request.
pub const DECRYPT_REQUEST_TYPE: &str = "DecryptRequest(uint256 secretId,address requester,uint64 blockNumber,bytes32 envelopeHash,bytes32 responseKeyHash,bytes32 nonce)";

/// `keccak256(DECRYPT_REQUEST_TYPE)`.
pub const DECRYPT_REQUEST_TYPEHASH: B256 =
    hex32(b"8092b9e5acd78f75888a44b57dac5e6507f20d2014e73fd89a8ded51284439a3");

/// The domain name.
pub const DOMAIN_NAME: &str = "CIFER";

/// `keccak256("CIFER")`.
pub const DOMAIN_NAME_HASH: B256 =
    hex32(b"695b3bf00c079aa56d7fd6e7273c9a5440c341865853dcc28ec092031f6fa1d5");

/// The domain version.
pub const DOMAIN_VERSION: &str = "1";

/// `keccak256("1")`.
pub const DOMAIN_VERSION_HASH: B256 =
    hex32(b"c89efdaa54c0f20c7adf612882df0950f5a951637e0307cdcb4c672f298b8bc6");

/// A `DecryptRequest` with the domain it is signed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TypedRequest {
    /// Domain: the chain id.
    pub chain_id: u64,
    /// Domain: the SecretsController the request is addressed to.
    pub verifying_contract: Address,
    /// The secret's id (`uint256`, big-endian).
    pub secret_id: U256,
    /// The address that signs (an EOA or an EIP-1271 contract).
    pub requester: Address,
    /// The block the request was made at (checked for freshness, §4.3 step 3).
    pub block_number: u64,
    /// `keccak256(header || encapsulation)` of the one envelope this request opens.
    pub envelope_hash: B256,
    /// `keccak256(ek_r)` of the requester's ephemeral ML-KEM-768 encapsulation key.
    pub response_key_hash: B256,
    /// 32 random bytes; each (requester, nonce) is accepted once.
    pub nonce: B256,
}

impl TypedRequest {
    /// `hashStruct(DecryptRequest)` =
    /// `keccak256(typeHash || secretId || requester || blockNumber || envelopeHash ||
    /// responseKeyHash || nonce)`, each member one 32-byte word.
    #[must_use]
    pub fn struct_hash(&self) -> B256 {
        let mut data = [0u8; 7 * 32];
        data[..32].copy_from_slice(&DECRYPT_REQUEST_TYPEHASH);
        data[32..64].copy_from_slice(&self.secret_id);
        data[64..96].copy_from_slice(&address_word(&self.requester));
        data[96..128].copy_from_slice(&u64_word(self.block_number));
        data[128..160].copy_from_slice(&self.envelope_hash);
        data[160..192].copy_from_slice(&self.response_key_hash);
        data[192..].copy_from_slice(&self.nonce);
        keccak256(&data)
    }

    /// The separator of this request's domain.
    #[must_use]
    pub fn domain_separator(&self) -> B256 {
        domain_separator(self.chain_id, &self.verifying_contract)
    }

    /// The signed digest: `keccak256(0x1901 || domainSeparator || structHash)`.
    #[must_use]
    pub fn digest(&self) -> B256 {
        let mut data = [0u8; 2 + 32 + 32];
        data[..2].copy_from_slice(&[0x19, 0x01]);
        data[2..34].copy_from_slice(&self.domain_separator());
        data[34..].copy_from_slice(&self.struct_hash());
        keccak256(&data)
    }
}

/// `hashStruct(EIP712Domain)` for `{name "CIFER", version "1", chainId, verifyingContract}`.
#[must_use]
pub fn domain_separator(chain_id: u64, verifying_contract: &Address) -> B256 {
    let mut data = [0u8; 5 * 32];
    data[..32].copy_from_slice(&EIP712_DOMAIN_TYPEHASH);
    data[32..64].copy_from_slice(&DOMAIN_NAME_HASH);
    data[64..96].copy_from_slice(&DOMAIN_VERSION_HASH);
    data[96..128].copy_from_slice(&u64_word(chain_id));
    data[128..].copy_from_slice(&address_word(verifying_contract));
    keccak256(&data)
}

fn u64_word(value: u64) -> B256 {
    let mut word = [0u8; 32];
    word[24..].copy_from_slice(&value.to_be_bytes());
    word
}

fn address_word(address: &Address) -> B256 {
    let mut word = [0u8; 32];
    word[12..].copy_from_slice(address);
    word
}

/// 64 hex digits to 32 bytes at compile time (a bad literal fails the build).
#[allow(clippy::panic, reason = "only evaluated in const items: a panic is a build error")]
const fn hex32(digits: &[u8; 64]) -> B256 {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        }
    }
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(digits[2 * i]) << 4) | nibble(digits[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn constants_are_the_hashes_of_their_strings() {
        assert_eq!(keccak256(EIP712_DOMAIN_TYPE.as_bytes()), EIP712_DOMAIN_TYPEHASH);
        assert_eq!(keccak256(DECRYPT_REQUEST_TYPE.as_bytes()), DECRYPT_REQUEST_TYPEHASH);
        assert_eq!(keccak256(DOMAIN_NAME.as_bytes()), DOMAIN_NAME_HASH);
        assert_eq!(keccak256(DOMAIN_VERSION.as_bytes()), DOMAIN_VERSION_HASH);
    }

    #[test]
    fn type_string_matches_the_contract() {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts/src/SecretsController.sol");
        let source = std::fs::read_to_string(path).unwrap();
        assert!(source.contains(&format!("\"{DECRYPT_REQUEST_TYPE}\"")));
        assert!(source.contains("EIP712(\"CIFER\", \"1\")"));
    }

    #[test]
    fn words_are_left_padded() {
        assert_eq!(u64_word(0x0102)[30..], [1, 2]);
        assert_eq!(u64_word(u64::MAX)[..24], [0; 24]);
        assert_eq!(address_word(&[0xff; 20])[..12], [0; 12]);
    }

    #[test]
    fn every_field_is_bound() {
        let base = TypedRequest {
            chain_id: 31337,
            verifying_contract: [1; 20],
            secret_id: [2; 32],
            requester: [3; 20],
            block_number: 1042,
            envelope_hash: [4; 32],
            response_key_hash: [5; 32],
            nonce: [6; 32],
        };
        let variants = [
            TypedRequest { chain_id: 1, ..base },
            TypedRequest { verifying_contract: [9; 20], ..base },
            TypedRequest { secret_id: [9; 32], ..base },
            TypedRequest { requester: [9; 20], ..base },
            TypedRequest { block_number: 1043, ..base },
            TypedRequest { envelope_hash: [9; 32], ..base },
            TypedRequest { response_key_hash: [9; 32], ..base },
            TypedRequest { nonce: [9; 32], ..base },
        ];
        let mut digests: Vec<B256> = variants.iter().map(TypedRequest::digest).collect();
        digests.push(base.digest());
        digests.sort_unstable();
        digests.dedup();
        assert_eq!(digests.len(), 9);
    }
}
