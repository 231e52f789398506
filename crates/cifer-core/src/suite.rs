//! Suites, PROTOCOL.md §1.

use core::fmt;

use crate::error::{Error, Result};

/// Length of an ML-KEM-768 ciphertext (FIPS 203, Table 3).
pub const MLKEM768_CIPHERTEXT_LEN: usize = 1088;
/// Length of a SEC1 compressed secp256k1 point.
pub const K256_POINT_LEN: usize = 33;

/// The key-encapsulation suite of an envelope (PROTOCOL.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum Suite {
    /// `0x01`: ML-KEM-768 to the secret's encapsulation key.
    MlKem768 = 0x01,
    /// `0x02`: threshold ECIES on secp256k1.
    K256Tecies = 0x02,
    /// `0x03`: both; the data key needs both shared secrets.
    Hybrid = 0x03,
}

impl Suite {
    /// The length of this suite's encapsulation (PROTOCOL.md §2).
    #[must_use]
    pub const fn encapsulation_len(self) -> usize {
        match self {
            Suite::MlKem768 => MLKEM768_CIPHERTEXT_LEN,
            Suite::K256Tecies => K256_POINT_LEN,
            Suite::Hybrid => MLKEM768_CIPHERTEXT_LEN + K256_POINT_LEN,
        }
    }

    /// The protocol name of the suite.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Suite::MlKem768 => "MLKEM768",
            Suite::K256Tecies => "K256-TECIES",
            Suite::Hybrid => "HYBRID",
        }
    }
}

impl TryFrom<u8> for Suite {
    type Error = Error;

    fn try_from(byte: u8) -> Result<Self> {
        match byte {
            0x01 => Ok(Suite::MlKem768),
            0x02 => Ok(Suite::K256Tecies),
            0x03 => Ok(Suite::Hybrid),
            other => Err(Error::UnknownSuite(other)),
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:02x} ({})", *self as u8, self.name())
    }
}
