#!/usr/bin/env python3
"""An independent implementation of CIFER PROTOCOL.md v1, suite 0x01, in Python.

Written from PROTOCOL.md alone (not from the Rust code) on top of the `cryptography`
package (OpenSSL: ML-KEM-768, HKDF-SHA256, AES-256-GCM). Used to test the Rust
implementation in both directions and to re-check the committed known-answer vectors.

    cifer_py.py keygen IDENTITY RECIPIENT
    cifer_py.py encrypt RECIPIENT CHAIN_ID SECRET_ID CHUNK_LOG2 < plaintext > envelope
    cifer_py.py decrypt IDENTITY < envelope > plaintext
    cifer_py.py check-vectors VECTORS.json
"""
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"CIFR"
ID_PREFIX = "CIFER-MLKEM768-SEED-1:"
EK_PREFIX = "CIFER-MLKEM768-EK-1:"
CT_LEN = 1088


class ProtocolError(Exception):
    pass


def read_key_line(text, prefix, nbytes):
    line = text[:-1] if text.endswith("\n") else text
    if not line.startswith(prefix):
        raise ProtocolError("wrong prefix")
    body = line[len(prefix):]
    if len(body) != 2 * nbytes or any(c not in "0123456789abcdef" for c in body):
        raise ProtocolError("bad key body")
    return bytes.fromhex(body)


def header(chain_id, secret_id, chunk_log2):
    return MAGIC + bytes([1, 1, chunk_log2, 0]) + struct.pack(">Q", chain_id) + secret_id.to_bytes(32, "big")


def stream_key(ikm, prefix):
    okm = HKDF(algorithm=hashes.SHA256(), length=39, salt=b"\x00" * 32, info=b"CIFER/v1/stream" + prefix).derive(ikm)
    return okm[:32], okm[32:]


def nonce(prefix7, i, last):
    return prefix7 + struct.pack(">I", i) + bytes([1 if last else 0])


def seal_body(key, np, pt, chunk_log2):
    cs = 1 << chunk_log2
    aes = AESGCM(key)
    pieces = [pt[i:i + cs] for i in range(0, len(pt), cs)] or [b""]
    return b"".join(aes.encrypt(nonce(np, i, i == len(pieces) - 1), p, None) for i, p in enumerate(pieces))


def open_envelope(seed, env):
    if len(env) < 48 or env[:4] != MAGIC:
        raise ProtocolError("bad magic or truncated")
    if env[4] != 1 or env[5] != 1 or not 10 <= env[6] <= 26 or env[7] != 0:
        raise ProtocolError("unsupported header")
    chunk_log2 = env[6]
    prefix = env[:48 + CT_LEN]
    if len(prefix) != 48 + CT_LEN:
        raise ProtocolError("truncated")
    sk = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    ss = sk.decapsulate(prefix[48:])
    key, np = stream_key(ss, prefix)
    aes = AESGCM(key)
    body = env[48 + CT_LEN:]
    full = (1 << chunk_log2) + 16
    out, i, pos = [], 0, 0
    while True:
        rest = len(body) - pos
        last = rest <= full
        piece = body[pos:pos + (rest if last else full)]
        if len(piece) < 16:
            raise ProtocolError("truncated")
        out.append(aes.decrypt(nonce(np, i, last), piece, None))
        if last:
            return b"".join(out)
        pos += full
        i += 1


def check_vectors(path):
    v = json.load(open(path))
    seed = read_key_line(v["identity_file"], ID_PREFIX, 64)
    sk = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    ek = read_key_line(v["recipient_file"], EK_PREFIX, 1184)
    assert sk.public_key().public_bytes_raw() == ek, "ek from seed differs"
    for case in v["cases"]:
        env = bytes.fromhex(case["envelope"])
        h = header(case["chain_id"], int(case["secret_id"], 16), case["chunk_log2"])
        assert env[:48] == h == bytes.fromhex(case["header"]), case["name"]
        prefix = env[:48 + CT_LEN]
        ss = sk.decapsulate(prefix[48:])
        assert ss.hex() == case["shared_secret"], case["name"]
        key, np = stream_key(ss, prefix)
        assert (key + np).hex() == case["stream_key"], case["name"]
        pt = bytes.fromhex(case["plaintext"])
        assert prefix + seal_body(key, np, pt, case["chunk_log2"]) == env, case["name"]
        assert open_envelope(seed, env) == pt, case["name"]
    print(f"{len(v['cases'])} vectors verified independently")


def main(argv):
    cmd = argv[1]
    if cmd == "keygen":
        seed = os.urandom(64)
        ek = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()
        open(argv[2], "w").write(ID_PREFIX + seed.hex() + "\n")
        open(argv[3], "w").write(EK_PREFIX + ek.hex() + "\n")
    elif cmd == "encrypt":
        ek = read_key_line(open(argv[2]).read(), EK_PREFIX, 1184)
        chain_id, secret_id, chunk_log2 = int(argv[3]), int(argv[4], 0), int(argv[5])
        ss, ct = mlkem.MLKEM768PublicKey.from_public_bytes(ek).encapsulate()
        prefix = header(chain_id, secret_id, chunk_log2) + ct
        key, np = stream_key(ss, prefix)
        sys.stdout.buffer.write(prefix + seal_body(key, np, sys.stdin.buffer.read(), chunk_log2))
    elif cmd == "decrypt":
        seed = read_key_line(open(argv[2]).read(), ID_PREFIX, 64)
        sys.stdout.buffer.write(open_envelope(seed, sys.stdin.buffer.read()))
    elif cmd == "check-vectors":
        check_vectors(argv[2])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    try:
        main(sys.argv)
    except ProtocolError as e:
        print(f"cifer_py: {e}", file=sys.stderr)
        sys.exit(4)
