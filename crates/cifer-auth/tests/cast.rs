//! Cross-checks against an independent implementation: Foundry's `cast` (alloy) signs the
//! seed payload (`personal_sign`) and the EIP-712 request, and computes the EIP-191 hash,
//! the ABI encodings and keccak256 that our hand-written encoding must match.
//!
//! `cast` comes from the `@foundry-rs/cast-linux-amd64` npm package (`npm ci` at the
//! repository root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs, reason = "tests")]

use std::path::PathBuf;
use std::process::Command;

use cifer_auth::ecdsa::{SECP256K1_ORDER, Signature};
use cifer_auth::{
    Error, SeedPayload, SeedRequest, SignerKind, TypedRequest, Verification, domain_separator,
    format_address, verify, verify_eoa,
};

/// anvil's well-known dev account 0.
const KEY0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ADDR0: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
/// anvil's dev account 1.
const KEY1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const ADDR1: &str = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
const U256_MAX: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

fn cast_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../node_modules/@foundry-rs/cast-linux-amd64/bin/cast");
    assert!(
        path.is_file(),
        "`cast` not found at {}: run `npm ci` at the repository root",
        path.display()
    );
    path
}

fn cast(args: &[&str]) -> String {
    let out = Command::new(cast_path()).args(args).output().expect("run cast");
    assert!(out.status.success(), "cast {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text)).unwrap()
}

fn address(text: &str) -> [u8; 20] {
    unhex(text).try_into().unwrap()
}

fn b256(text: &str) -> [u8; 32] {
    unhex(text).try_into().unwrap()
}

fn u256_from_u64(v: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[24..].copy_from_slice(&v.to_be_bytes());
    out
}

fn sign_message(key: &str, message: &str) -> Vec<u8> {
    unhex(&cast(&["wallet", "sign", "--private-key", key, message]))
}

/// `n - s` for `0 < s < n`.
fn negate(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(SECP256K1_ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    out
}

/// The malleable twin `(r, n - s, v ^ 1)` of a 65-byte signature.
fn high_s_twin(sig: &[u8]) -> Vec<u8> {
    let s: [u8; 32] = sig[32..64].try_into().unwrap();
    let mut twin = sig.to_vec();
    twin[32..64].copy_from_slice(&negate(&s));
    twin[64] = if sig[64] == 27 { 28 } else { 27 };
    twin
}

// ------------------------------------------------------------------ §4.1 seed payload

#[test]
fn seed_payload_signed_by_cast() {
    let request = SeedRequest {
        chain_id: 31337,
        secret_id: u256_from_u64(7),
        signer: address(ADDR0),
        block_number: 1042,
    };
    let message = request.message();
    assert_eq!(message, format!("31337_7_{ADDR0}_1042"));
    assert_eq!(request.digest().to_vec(), unhex(&cast(&["hash-message", &message])));

    let signature = sign_message(KEY0, &message);
    assert!(matches!(signature[64], 27 | 28));
    let payload = SeedPayload::parse(&message).unwrap();
    let verified = verify_eoa(payload.clone(), &signature).unwrap();
    assert_eq!(format_address(&verified.signer()), ADDR0);
    assert_eq!(verified.digest(), request.digest());
    assert_eq!(verified.request().request(), &request);
    // The canonical request verifies the same way.
    assert!(verify_eoa(request, &signature).is_ok());

    // Another key's signature, claimed for account 0.
    let other = sign_message(KEY1, &message);
    assert_eq!(verify_eoa(payload.clone(), &other), Err(Error::SignerMismatch));

    // The malleable high-s twin is refused by type, not by accident.
    let twin = high_s_twin(&signature);
    assert_eq!(verify_eoa(payload.clone(), &twin), Err(Error::HighS));

    // A different block in the text: a different digest, so someone else recovers.
    let moved = SeedPayload::parse(&format!("31337_7_{ADDR0}_1043")).unwrap();
    assert_eq!(verify_eoa(moved, &signature), Err(Error::SignerMismatch));

    // v byte mangled.
    let mut bad_v = signature.clone();
    bad_v[64] = 29;
    assert_eq!(verify_eoa(payload.clone(), &bad_v), Err(Error::InvalidRecoveryByte(29)));
    // r or s zeroed.
    let mut zero_r = signature.clone();
    zero_r[..32].fill(0);
    assert_eq!(verify_eoa(payload.clone(), &zero_r), Err(Error::ScalarOutOfRange));
    let mut big_s = signature.clone();
    big_s[32..64].copy_from_slice(&SECP256K1_ORDER);
    assert_eq!(verify_eoa(payload, &big_s), Err(Error::ScalarOutOfRange));
}

#[test]
fn protocol_example_signed_by_its_signer() {
    let text = "31337_7_0x70997970c51812dc3a010c7d01b50e0d17dc79c8_1042";
    let signature = sign_message(KEY1, text);
    let verified = verify_eoa(SeedPayload::parse(text).unwrap(), &signature).unwrap();
    assert_eq!(format_address(&verified.signer()), ADDR1);
}

#[test]
fn seed_payload_with_checksummed_address_and_max_secret() {
    let checksummed = cast(&["to-check-sum-address", ADDR0]);
    assert_ne!(checksummed, ADDR0);
    let text = format!("1_{U256_MAX}_{checksummed}_0");
    let signature = sign_message(KEY0, &text);

    let payload = SeedPayload::parse(&text).unwrap();
    assert_eq!(payload.request().secret_id, [0xff; 32]);
    assert_eq!(payload.digest().to_vec(), unhex(&cast(&["hash-message", &text])));
    let verified = verify_eoa(payload.clone(), &signature).unwrap();
    assert_eq!(format_address(&verified.signer()), ADDR0);

    // The wallet signed the checksummed text: re-formatting it in lower case changes the
    // digest, which is why verifiers check `SeedPayload` (the text as received).
    assert_eq!(verify_eoa(*payload.request(), &signature), Err(Error::SignerMismatch));
}

#[test]
fn seed_signature_bits_flipped() {
    let text = format!("31337_7_{ADDR0}_1042");
    let signature = sign_message(KEY0, &text);
    let payload = SeedPayload::parse(&text).unwrap();
    for bit in [0usize, 7, 100, 255, 256, 300, 511] {
        let mut flipped = signature.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let result = verify_eoa(payload.clone(), &flipped);
        assert!(
            matches!(result, Err(Error::SignerMismatch | Error::InvalidSignature | Error::HighS)),
            "bit {bit}: {result:?}"
        );
    }
}

// ------------------------------------------------------------------ §4.2 typed request

fn typed_request(secret_id: [u8; 32], requester: &str) -> TypedRequest {
    TypedRequest {
        chain_id: 31337,
        verifying_contract: address("0x5fbdb2315678afecb367f032d93f642f64180aa3"),
        secret_id,
        requester: address(requester),
        block_number: 1042,
        envelope_hash: cifer_auth::keccak256(b"envelope"),
        response_key_hash: cifer_auth::keccak256(b"response key"),
        nonce: cifer_auth::keccak256(b"nonce"),
    }
}

fn typed_json(r: &TypedRequest, secret_id_decimal: &str) -> String {
    format!(
        r#"{{"types":{{"EIP712Domain":[{{"name":"name","type":"string"}},{{"name":"version","type":"string"}},{{"name":"chainId","type":"uint256"}},{{"name":"verifyingContract","type":"address"}}],"DecryptRequest":[{{"name":"secretId","type":"uint256"}},{{"name":"requester","type":"address"}},{{"name":"blockNumber","type":"uint64"}},{{"name":"envelopeHash","type":"bytes32"}},{{"name":"responseKeyHash","type":"bytes32"}},{{"name":"nonce","type":"bytes32"}}]}},"primaryType":"DecryptRequest","domain":{{"name":"CIFER","version":"1","chainId":{},"verifyingContract":"{}"}},"message":{{"secretId":"{}","requester":"{}","blockNumber":{},"envelopeHash":"0x{}","responseKeyHash":"0x{}","nonce":"0x{}"}}}}"#,
        r.chain_id,
        format_address(&r.verifying_contract),
        secret_id_decimal,
        format_address(&r.requester),
        r.block_number,
        hex::encode(r.envelope_hash),
        hex::encode(r.response_key_hash),
        hex::encode(r.nonce),
    )
}

fn keccak_via_cast(data: &[u8]) -> [u8; 32] {
    b256(&cast(&["keccak", &format!("0x{}", hex::encode(data))]))
}

#[test]
fn domain_separator_struct_hash_and_digest_match_cast() {
    let r = typed_request([0xff; 32], ADDR0);
    let contract = format_address(&r.verifying_contract);

    let domain_typehash = cast(&[
        "keccak",
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)",
    ]);
    let encoded_domain = cast(&[
        "abi-encode",
        "f(bytes32,bytes32,bytes32,uint256,address)",
        &domain_typehash,
        &cast(&["keccak", "CIFER"]),
        &cast(&["keccak", "1"]),
        "31337",
        &contract,
    ]);
    let separator = b256(&cast(&["keccak", &encoded_domain]));
    assert_eq!(domain_separator(31337, &r.verifying_contract), separator);
    assert_eq!(r.domain_separator(), separator);

    let type_hash = cast(&[
        "keccak",
        "DecryptRequest(uint256 secretId,address requester,uint64 blockNumber,bytes32 envelopeHash,bytes32 responseKeyHash,bytes32 nonce)",
    ]);
    let encoded_struct = cast(&[
        "abi-encode",
        "f(bytes32,uint256,address,uint64,bytes32,bytes32,bytes32)",
        &type_hash,
        U256_MAX,
        ADDR0,
        "1042",
        &format!("0x{}", hex::encode(r.envelope_hash)),
        &format!("0x{}", hex::encode(r.response_key_hash)),
        &format!("0x{}", hex::encode(r.nonce)),
    ]);
    let struct_hash = b256(&cast(&["keccak", &encoded_struct]));
    assert_eq!(r.struct_hash(), struct_hash);

    let mut preimage = vec![0x19, 0x01];
    preimage.extend_from_slice(&separator);
    preimage.extend_from_slice(&struct_hash);
    assert_eq!(r.digest(), keccak_via_cast(&preimage));
}

#[test]
fn typed_request_signed_by_cast() {
    for (secret_id, decimal) in [(u256_from_u64(7), "7"), ([0xff; 32], U256_MAX)] {
        let request = typed_request(secret_id, ADDR0);
        let json = typed_json(&request, decimal);
        let signature = unhex(&cast(&["wallet", "sign", "--data", "--private-key", KEY0, &json]));

        // RFC 6979 signatures are deterministic: signing our digest raw gives the same bytes
        // exactly when our digest is alloy's EIP-712 digest.
        let digest_hex = format!("0x{}", hex::encode(request.digest()));
        let raw =
            unhex(&cast(&["wallet", "sign", "--no-hash", "--private-key", KEY0, &digest_hex]));
        assert_eq!(raw, signature, "secretId {decimal}");

        let Verification::Verified(verified) =
            verify(request, &signature, SignerKind::Eoa).unwrap()
        else {
            panic!("an EOA is verified locally");
        };
        assert_eq!(format_address(&verified.signer()), ADDR0);
        assert_eq!(verified.digest(), request.digest());

        // High-s twin: typed error.
        assert_eq!(verify_eoa(request, &high_s_twin(&signature)), Err(Error::HighS));
        // Same signature, one field changed: the digest moves, someone else recovers.
        for changed in [
            TypedRequest { chain_id: 1, ..request },
            TypedRequest { verifying_contract: [0x11; 20], ..request },
            TypedRequest { block_number: 1043, ..request },
            TypedRequest { nonce: [0; 32], ..request },
        ] {
            assert_eq!(verify_eoa(changed, &signature), Err(Error::SignerMismatch));
        }
        // Account 1 signs a request that claims account 0.
        let other = unhex(&cast(&["wallet", "sign", "--data", "--private-key", KEY1, &json]));
        assert_eq!(verify_eoa(request, &other), Err(Error::SignerMismatch));
        // ... and it is valid for account 1's own request.
        let own = typed_request(secret_id, ADDR1);
        let own_sig = unhex(&cast(&[
            "wallet",
            "sign",
            "--data",
            "--private-key",
            KEY1,
            &typed_json(&own, decimal),
        ]));
        assert!(verify_eoa(own, &own_sig).is_ok());
        // Its parsed form round-trips.
        let parsed = Signature::from_bytes(&signature).unwrap();
        assert_eq!(parsed.to_bytes().to_vec(), signature);
    }
}
