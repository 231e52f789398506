//! Parsing and printing `uint256` secret ids (32 big-endian bytes).

/// Parses a secret id: decimal digits (`< 2^256`) or `0x` followed by 1 to 64 hex digits.
pub(crate) fn parse(text: &str) -> Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    if let Some(hex_digits) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex_digits.is_empty() || hex_digits.len() > 64 {
            return Err("expected 1 to 64 hex digits after 0x (at most 32 bytes)".into());
        }
        if !hex_digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("not a hex number".into());
        }
        let padded = format!("{hex_digits:0>64}");
        hex::decode_to_slice(padded, &mut out).map_err(|e| e.to_string())?;
        return Ok(out);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a decimal number or 0x-prefixed hex".into());
    }
    for digit in text.bytes().map(|b| b - b'0') {
        // out = out * 10 + digit, big-endian, failing on overflow past 256 bits.
        let mut carry = u16::from(digit);
        for byte in out.iter_mut().rev() {
            let v = u16::from(*byte) * 10 + carry;
            *byte = v.to_le_bytes()[0];
            carry = v >> 8;
        }
        if carry != 0 {
            return Err("does not fit in 256 bits".into());
        }
    }
    Ok(out)
}

/// The decimal representation of a big-endian `uint256`.
pub(crate) fn to_decimal(id: &[u8; 32]) -> String {
    let mut n = *id;
    let mut digits = Vec::new();
    while n.iter().any(|&b| b != 0) {
        // n = n / 10, remainder is the next digit (least significant first).
        let mut rem = 0u16;
        for byte in &mut n {
            let v = (rem << 8) | u16::from(*byte);
            // v < 2560, so v / 10 < 256.
            *byte = (v / 10).to_le_bytes()[0];
            rem = v % 10;
        }
        digits.push(b'0' + rem.to_le_bytes()[0]);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn decimal_and_hex_agree() {
        let mut seven = [0u8; 32];
        seven[31] = 7;
        assert_eq!(parse("7").unwrap(), seven);
        assert_eq!(parse("0x7").unwrap(), seven);
        assert_eq!(parse("0x07").unwrap(), seven);
        assert_eq!(parse("0").unwrap(), [0u8; 32]);
        let mut big = [0u8; 32];
        big[30] = 0x01;
        big[31] = 0x00;
        assert_eq!(parse("256").unwrap(), big);
        assert_eq!(parse("0x100").unwrap(), big);
        assert_eq!(parse("0xABcd").unwrap()[30..], [0xab, 0xcd]);
    }

    #[test]
    fn bounds() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(parse(max).unwrap(), [0xff; 32]);
        assert_eq!(to_decimal(&[0xff; 32]), max);
        assert!(
            parse("115792089237316195423570985008687907853269984665640564039457584007913129639936")
                .is_err()
        );
        assert!(parse(&format!("0x{}", "f".repeat(64))).is_ok());
        assert!(parse(&format!("0x{}", "f".repeat(65))).is_err());
        for bad in ["", "0x", "-1", "1.5", "0xg", " 1", "1e3"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decimal_round_trip() {
        for text in ["0", "1", "9", "10", "255", "256", "31337", "18446744073709551616"] {
            assert_eq!(to_decimal(&parse(text).unwrap()), text);
        }
    }
}
