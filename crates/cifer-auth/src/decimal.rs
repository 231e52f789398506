//! Canonical decimal for `uint256` (32 bytes, big-endian) and `u64`: no sign, no
//! whitespace, no leading zero (`0` itself is `0`).

/// `2^256 - 1` has 78 decimal digits.
pub(crate) const U256_MAX_DIGITS: usize = 78;

/// Why a decimal field was refused.
pub(crate) enum DecimalError {
    Empty,
    NotDigits,
    LeadingZero,
    OutOfRange,
}

impl DecimalError {
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            DecimalError::Empty => "empty",
            DecimalError::NotDigits => "not a decimal number",
            DecimalError::LeadingZero => "leading zero",
            DecimalError::OutOfRange => "out of range",
        }
    }
}

/// The decimal digits of a big-endian `uint256`.
pub(crate) fn u256_to_decimal(value: &[u8; 32]) -> String {
    let mut n = *value;
    let mut digits = Vec::with_capacity(U256_MAX_DIGITS);
    loop {
        // Long division of n by 10, most significant byte first.
        let mut rem: u16 = 0;
        for byte in n.iter_mut() {
            let cur = (rem << 8) | u16::from(*byte);
            // rem < 10, so cur < 2560 and cur / 10 < 256: the high byte is zero.
            let [quotient, _] = (cur / 10).to_le_bytes();
            *byte = quotient;
            rem = cur % 10;
        }
        let [digit, _] = rem.to_le_bytes();
        digits.push(char::from(b'0' + digit));
        if n.iter().all(|&b| b == 0) {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// Checks the canonical shape shared by every decimal field.
fn check_canonical(s: &str) -> Result<(), DecimalError> {
    if s.is_empty() {
        return Err(DecimalError::Empty);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotDigits);
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(DecimalError::LeadingZero);
    }
    Ok(())
}

/// Parses a canonical decimal `uint256` into 32 big-endian bytes.
pub(crate) fn decimal_to_u256(s: &str) -> Result<[u8; 32], DecimalError> {
    check_canonical(s)?;
    if s.len() > U256_MAX_DIGITS {
        return Err(DecimalError::OutOfRange);
    }
    let mut n = [0u8; 32];
    for d in s.bytes() {
        // n = n * 10 + d, least significant byte first.
        let mut carry = u16::from(d - b'0');
        for byte in n.iter_mut().rev() {
            let [lo, hi] = (u16::from(*byte) * 10 + carry).to_le_bytes();
            *byte = lo;
            carry = u16::from(hi);
        }
        if carry != 0 {
            return Err(DecimalError::OutOfRange);
        }
    }
    Ok(n)
}

/// Parses a canonical decimal `u64`.
pub(crate) fn decimal_to_u64(s: &str) -> Result<u64, DecimalError> {
    check_canonical(s)?;
    // Digits only by now, so the only failure left is overflow.
    s.parse::<u64>().map_err(|_| DecimalError::OutOfRange)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use proptest::prelude::*;

    const MAX: &str =
        "115792089237316195423570985008687907853269984665640564039457584007913129639935";

    fn be(v: u128) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[16..].copy_from_slice(&v.to_be_bytes());
        out
    }

    #[test]
    fn edges() {
        assert_eq!(u256_to_decimal(&[0; 32]), "0");
        assert_eq!(u256_to_decimal(&[0xff; 32]), MAX);
        assert_eq!(MAX.len(), U256_MAX_DIGITS);
        assert_eq!(decimal_to_u256(MAX).ok(), Some([0xff; 32]));
        assert_eq!(decimal_to_u256("0").ok(), Some([0; 32]));
        assert_eq!(u256_to_decimal(&be(1 << 64)), "18446744073709551616");
        let mut two_128 = [0u8; 32];
        two_128[15] = 1;
        assert_eq!(u256_to_decimal(&two_128), "340282366920938463463374607431768211456");
    }

    #[test]
    fn rejects() {
        // 2^256 and beyond.
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(matches!(decimal_to_u256(over), Err(DecimalError::OutOfRange)));
        assert!(matches!(decimal_to_u256(&"9".repeat(79)), Err(DecimalError::OutOfRange)));
        assert!(matches!(decimal_to_u256(&"9".repeat(78)), Err(DecimalError::OutOfRange)));
        assert!(matches!(decimal_to_u256(""), Err(DecimalError::Empty)));
        assert!(matches!(decimal_to_u256("00"), Err(DecimalError::LeadingZero)));
        assert!(matches!(decimal_to_u256("07"), Err(DecimalError::LeadingZero)));
        for bad in ["+7", "-7", " 7", "7 ", "7a", "0x7", "٣", "1_000", "1e3"] {
            assert!(matches!(decimal_to_u256(bad), Err(DecimalError::NotDigits)), "{bad}");
            assert!(matches!(decimal_to_u64(bad), Err(DecimalError::NotDigits)), "{bad}");
        }
        assert_eq!(decimal_to_u64("18446744073709551615").ok(), Some(u64::MAX));
        assert!(matches!(decimal_to_u64("18446744073709551616"), Err(DecimalError::OutOfRange)));
        assert!(matches!(decimal_to_u64("01"), Err(DecimalError::LeadingZero)));
        assert_eq!(decimal_to_u64("0").ok(), Some(0));
    }

    proptest! {
        #[test]
        fn matches_u128(v: u128) {
            prop_assert_eq!(u256_to_decimal(&be(v)), v.to_string());
            prop_assert_eq!(decimal_to_u256(&v.to_string()).ok(), Some(be(v)));
        }

        #[test]
        fn roundtrip(bytes: [u8; 32]) {
            let s = u256_to_decimal(&bytes);
            prop_assert!(s.len() <= U256_MAX_DIGITS);
            prop_assert_eq!(decimal_to_u256(&s).ok(), Some(bytes));
        }
    }
}
