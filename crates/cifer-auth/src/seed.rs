//! The seed payload signed with `personal_sign` (PROTOCOL.md §4.1, EIP-191 version 0x45).
//!
//! ```text
//! {chainId}_{secretId}_{signerAddress}_{blockNumber}
//! 31337_7_0x70997970c51812dc3a010c7d01b50e0d17dc79c8_1042
//! ```
//!
//! The numbers are canonical decimal (no sign, whitespace or leading zero), the address is
//! `0x` and 40 hex digits in any case. A wallet may sign the address checksummed (EIP-55)
//! or in lower case, so the signed digest is over the exact text received: [`SeedPayload`]
//! keeps it; [`SeedRequest`] is the parsed value and formats the address in lower case.

use core::fmt;
use core::str::FromStr;

use crate::decimal::{self, DecimalError};
use crate::{Address, Error, Result, U256, keccak256};

/// Longest canonical payload: 20 + 78 + 42 + 20 digits and three separators.
pub const MAX_SEED_PAYLOAD_LEN: usize = 20 + decimal::U256_MAX_DIGITS + 42 + 20 + 3;

/// The fields of a seed payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeedRequest {
    /// The chain the request is for (EIP-155 chain id).
    pub chain_id: u64,
    /// The secret's id, a `uint256` as 32 big-endian bytes.
    pub secret_id: U256,
    /// The address that claims to have signed.
    pub signer: Address,
    /// The block the request was made at (checked for freshness, §4.3 step 3).
    pub block_number: u64,
}

impl SeedRequest {
    /// The canonical payload: decimal numbers, address as `0x` and lower-case hex.
    #[must_use]
    pub fn message(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.chain_id,
            decimal::u256_to_decimal(&self.secret_id),
            format_address(&self.signer),
            self.block_number
        )
    }

    /// The EIP-191 digest of [`SeedRequest::message`], i.e. what a wallet signs when it is
    /// handed the canonical (lower-case) payload.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        eip191_hash(self.message().as_bytes())
    }

    /// Parses a payload, accepting any hex case in the address.
    ///
    /// # Errors
    /// [`Error::MalformedSeedPayload`] unless the text is exactly four `_`-separated fields,
    /// with `chainId` and `blockNumber` canonical decimal `u64`, `secretId` canonical decimal
    /// below 2^256, and the address `0x` followed by 40 hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        let malformed = |field, reason| Error::MalformedSeedPayload { field, reason };
        let dec = |field| move |e: DecimalError| malformed(field, e.reason());

        if text.len() > MAX_SEED_PAYLOAD_LEN {
            return Err(malformed("payload", "too long"));
        }
        let mut fields = text.split('_');
        let (Some(chain), Some(secret), Some(signer), Some(block), None) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed("payload", "expected four fields separated by '_'"));
        };
        Ok(SeedRequest {
            chain_id: decimal::decimal_to_u64(chain).map_err(dec("chainId"))?,
            secret_id: decimal::decimal_to_u256(secret).map_err(dec("secretId"))?,
            signer: parse_address(signer)
                .ok_or_else(|| malformed("signerAddress", "expected 0x and 40 hex digits"))?,
            block_number: decimal::decimal_to_u64(block).map_err(dec("blockNumber"))?,
        })
    }
}

impl fmt::Display for SeedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl FromStr for SeedRequest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// A seed payload as received: the exact text the wallet signed and its parsed fields.
///
/// This is what a verifier checks ([`crate::verify()`]): the digest is over the text as
/// signed, so a checksummed address verifies as well as a lower-case one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeedPayload {
    text: String,
    request: SeedRequest,
}

impl SeedPayload {
    /// Parses a received payload, keeping its text.
    ///
    /// # Errors
    /// As [`SeedRequest::parse`].
    pub fn parse(text: &str) -> Result<Self> {
        Ok(SeedPayload { request: SeedRequest::parse(text)?, text: text.to_owned() })
    }

    /// The canonical payload of `request` (what [`SeedRequest::message`] prints).
    #[must_use]
    pub fn canonical(request: SeedRequest) -> Self {
        SeedPayload { text: request.message(), request }
    }

    /// The text as signed.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parsed fields.
    #[must_use]
    pub fn request(&self) -> &SeedRequest {
        &self.request
    }

    /// The EIP-191 digest of the text as signed.
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        eip191_hash(self.text.as_bytes())
    }
}

/// EIP-191 version 0x45 (`personal_sign`):
/// `keccak256("\x19Ethereum Signed Message:\n" || decimal(len(message)) || message)`.
#[must_use]
pub fn eip191_hash(message: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(message.len() + 48);
    data.extend_from_slice(b"\x19Ethereum Signed Message:\n");
    data.extend_from_slice(message.len().to_string().as_bytes());
    data.extend_from_slice(message);
    keccak256(&data)
}

/// `0x` and 40 lower-case hex digits.
#[must_use]
pub fn format_address(address: &Address) -> String {
    format!("0x{}", hex::encode(address))
}

/// `0x` (lower-case `x`) and exactly 40 hex digits of any case; no EIP-55 checksum check
/// (PROTOCOL.md §4.1: verifiers compare the 20 bytes).
#[must_use]
pub fn parse_address(text: &str) -> Option<Address> {
    let digits = text.strip_prefix("0x")?;
    if digits.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]

    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = "31337_7_0x70997970c51812dc3a010c7d01b50e0d17dc79c8_1042";
    const ADDR: &str = "70997970c51812dc3a010c7d01b50e0d17dc79c8";
    const U256_MAX: &str =
        "115792089237316195423570985008687907853269984665640564039457584007913129639935";

    fn example() -> SeedRequest {
        let mut secret_id = [0u8; 32];
        secret_id[31] = 7;
        SeedRequest {
            chain_id: 31337,
            secret_id,
            signer: hex::decode(ADDR).unwrap().try_into().unwrap(),
            block_number: 1042,
        }
    }

    fn reason(text: &str) -> (&'static str, &'static str) {
        match SeedRequest::parse(text) {
            Err(Error::MalformedSeedPayload { field, reason }) => (field, reason),
            other => panic!("{text:?} parsed as {other:?}"),
        }
    }

    #[test]
    fn protocol_example() {
        assert_eq!(example().message(), EXAMPLE);
        assert_eq!(example().to_string(), EXAMPLE);
        assert_eq!(SeedRequest::parse(EXAMPLE).unwrap(), example());
        assert_eq!(EXAMPLE.parse::<SeedRequest>().unwrap(), example());
        // `cast hash-message 31337_7_0x70997970c51812dc3a010c7d01b50e0d17dc79c8_1042`
        assert_eq!(
            hex::encode(example().digest()),
            "34602c0f6756b9f7e637b5005ca18f5b2d2f64eaba6c41410e05b0aa2a229f2d"
        );
    }

    #[test]
    fn zero_and_max() {
        let zero =
            SeedRequest { chain_id: 0, secret_id: [0; 32], signer: [0; 20], block_number: 0 };
        let text = "0_0_0x0000000000000000000000000000000000000000_0";
        assert_eq!(zero.message(), text);
        assert_eq!(SeedRequest::parse(text).unwrap(), zero);

        let max = SeedRequest {
            chain_id: u64::MAX,
            secret_id: [0xff; 32],
            signer: [0xff; 20],
            block_number: u64::MAX,
        };
        let text = format!(
            "18446744073709551615_{U256_MAX}_0xffffffffffffffffffffffffffffffffffffffff_18446744073709551615"
        );
        assert_eq!(max.message(), text);
        assert_eq!(text.len(), MAX_SEED_PAYLOAD_LEN);
        assert_eq!(SeedRequest::parse(&text).unwrap(), max);
    }

    #[test]
    fn any_address_case() {
        let upper = format!("31337_7_0x{}_1042", ADDR.to_uppercase());
        let checksummed = "31337_7_0x70997970C51812dc3A010C7d01b50e0d17dc79C8_1042";
        for text in [upper.as_str(), checksummed] {
            let payload = SeedPayload::parse(text).unwrap();
            assert_eq!(*payload.request(), example());
            assert_eq!(payload.text(), text);
            // The digest is over the text as signed, not the canonical form.
            assert_eq!(payload.digest(), eip191_hash(text.as_bytes()));
            assert_ne!(payload.digest(), example().digest());
        }
        assert_eq!(SeedPayload::canonical(example()).digest(), example().digest());
    }

    #[test]
    fn rejects() {
        let a = format!("0x{ADDR}");
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        let cases: Vec<(String, (&str, &str))> = vec![
            (String::new(), ("payload", "expected four fields separated by '_'")),
            (format!("31337_7_{a}"), ("payload", "expected four fields separated by '_'")),
            (format!("31337_7_{a}_1042_"), ("payload", "expected four fields separated by '_'")),
            (format!("31337_7_{a}_1042_9"), ("payload", "expected four fields separated by '_'")),
            (format!("_7_{a}_1042"), ("chainId", "empty")),
            (format!("31337__{a}_1042"), ("secretId", "empty")),
            ("31337_7__1042".into(), ("signerAddress", "expected 0x and 40 hex digits")),
            (format!("31337_7_{a}_"), ("blockNumber", "empty")),
            (format!("031337_7_{a}_1042"), ("chainId", "leading zero")),
            (format!("31337_07_{a}_1042"), ("secretId", "leading zero")),
            (format!("31337_00_{a}_1042"), ("secretId", "leading zero")),
            (format!("31337_7_{a}_01042"), ("blockNumber", "leading zero")),
            (format!("+31337_7_{a}_1042"), ("chainId", "not a decimal number")),
            (format!("31337_-7_{a}_1042"), ("secretId", "not a decimal number")),
            (format!(" 31337_7_{a}_1042"), ("chainId", "not a decimal number")),
            (format!("31337_7_{a}_1042\n"), ("blockNumber", "not a decimal number")),
            (format!("31337_7_{a}_1042 "), ("blockNumber", "not a decimal number")),
            (format!("31337_7_ {a}_1042"), ("signerAddress", "expected 0x and 40 hex digits")),
            (format!("31337_0x7_{a}_1042"), ("secretId", "not a decimal number")),
            (format!("18446744073709551616_7_{a}_1042"), ("chainId", "out of range")),
            (format!("31337_{over}_{a}_1042"), ("secretId", "out of range")),
            (format!("31337_7_{a}_18446744073709551616"), ("blockNumber", "out of range")),
            (format!("31337_7_0X{ADDR}_1042"), ("signerAddress", "expected 0x and 40 hex digits")),
            (format!("31337_7_{ADDR}_1042"), ("signerAddress", "expected 0x and 40 hex digits")),
            (format!("31337_7_{a}0_1042"), ("signerAddress", "expected 0x and 40 hex digits")),
            (
                format!("31337_7_0x{}_1042", &ADDR[1..]),
                ("signerAddress", "expected 0x and 40 hex digits"),
            ),
            (
                format!("31337_7_0x{}g_1042", &ADDR[1..]),
                ("signerAddress", "expected 0x and 40 hex digits"),
            ),
            (format!("31337_7_{a}_1042{}", "0".repeat(200)), ("payload", "too long")),
        ];
        for (text, expected) in cases {
            assert_eq!(reason(&text), expected, "{text:?}");
        }
    }

    #[test]
    fn errors_do_not_echo_input() {
        let err = SeedRequest::parse("31337_7_0xEVIL\u{1b}[31m_1042").unwrap_err().to_string();
        assert_eq!(err, "malformed seed payload: signerAddress: expected 0x and 40 hex digits");
    }

    fn any_request() -> impl Strategy<Value = SeedRequest> {
        (any::<u64>(), any::<[u8; 32]>(), any::<[u8; 20]>(), any::<u64>()).prop_map(
            |(chain_id, secret_id, signer, block_number)| SeedRequest {
                chain_id,
                secret_id,
                signer,
                block_number,
            },
        )
    }

    proptest! {
        #[test]
        fn parse_format_roundtrip(request in any_request()) {
            let text = request.message();
            prop_assert!(text.len() <= MAX_SEED_PAYLOAD_LEN);
            prop_assert_eq!(SeedRequest::parse(&text).unwrap(), request);
            prop_assert_eq!(SeedPayload::parse(&text).unwrap().digest(), request.digest());
        }

        #[test]
        fn parse_accepts_upper_case_address(request in any_request()) {
            let text = format!(
                "{}_{}_0x{}_{}",
                request.chain_id,
                decimal::u256_to_decimal(&request.secret_id),
                hex::encode_upper(request.signer),
                request.block_number
            );
            prop_assert_eq!(SeedRequest::parse(&text).unwrap(), request);
        }

        #[test]
        fn parse_never_panics_and_accepts_only_canonical(text in "[0-9a-fA-Fx_ +-]{0,200}") {
            if let Ok(request) = SeedRequest::parse(&text) {
                // Canonical up to the case of the address.
                prop_assert_eq!(request.message(), text.to_lowercase());
            }
        }
    }
}
