#!/usr/bin/env python3
"""An independent implementation of protocol 2's cryptography, written from
docs/PROTOCOL.md alone (§6 layouts, §9 inputs), sharing no code with chiploc:
Ed25519 and X25519 from python3-cryptography, BLAKE2b from Python's hashlib.
It recomputes every key, layout, signature, session id, session key, MAC,
transcript and record of the worked example and checks that each value
appears in §9 of the document, byte for byte; it also verifies the
signatures the document shows with the public keys alone, as an offline
auditor would. A mismatch means the document does not describe the
protocol the library speaks (tests/test_layout.c pins the library to the
same bytes).

    tests/test_protocol_independent.py [PATH_TO_PROTOCOL.md]
"""
import hashlib
import os
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from cryptography.hazmat.primitives.asymmetric.x25519 import (X25519PrivateKey,
                                                              X25519PublicKey)

SUITE = 1


def raw(public_key):
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def be32(v):
    return struct.pack(">I", v)


def be64(v):
    return struct.pack(">Q", v)


def ctx(text):
    """A context string and its NUL (§6)."""
    return text.encode("ascii") + b"\0"


def blake2b(data, key=b""):
    return hashlib.blake2b(data, digest_size=32, key=key).digest()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "docs", "PROTOCOL.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.index("## 9. Worked example")
    end = text.index("## 10.", start)
    # §9 with its hex blocks joined: values wrapped over lines become one string.
    doc = re.sub(r"\s+", "", text[start:end])

    failures = []

    def shown(name, value):
        if value.hex() not in doc:
            failures.append(f"{name}: {value.hex()} is not in PROTOCOL.md §9")

    # §9 inputs.
    lm_id = Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
    chip_id = Ed25519PrivateKey.from_private_bytes(b"\x02" * 32)
    lm_eph = X25519PrivateKey.from_private_bytes(b"\x03" * 32)
    chip_eph = X25519PrivateKey.from_private_bytes(b"\x04" * 32)
    lm_pk, chip_pk = raw(lm_id.public_key()), raw(chip_id.public_key())
    lm_e, chip_e = raw(lm_eph.public_key()), raw(chip_eph.public_key())
    lm_nonce, chip_nonce = bytes(range(0xA0, 0xC0)), bytes(range(0xC0, 0xE0))
    for name, v in (("landmark public key", lm_pk), ("chip public key", chip_pk),
                    ("landmark ephemeral key", lm_e), ("chip ephemeral key", chip_e)):
        shown(name, v)

    # §6.2 handshake layouts and both signatures.
    body = be32(SUITE) + lm_pk + chip_pk + lm_e + chip_e + lm_nonce + chip_nonce
    hs_lm = ctx("chiploc v2 handshake landmark") + body
    hs_chip = ctx("chiploc v2 handshake chip") + body
    sig_lm, sig_chip = lm_id.sign(hs_lm), chip_id.sign(hs_chip)
    shown("landmark handshake layout", hs_lm)
    shown("chip handshake layout", hs_chip)
    shown("landmark handshake signature", sig_lm)
    shown("chip handshake signature", sig_chip)

    # §6.3 session id, §6.4 session key: both sides derive the same key.
    sid = blake2b(ctx("chiploc v2 session id") + body)
    q_lm = lm_eph.exchange(X25519PublicKey.from_public_bytes(chip_e))
    q_chip = chip_eph.exchange(X25519PublicKey.from_public_bytes(lm_e))
    if q_lm != q_chip:
        failures.append("X25519: the two sides do not agree")
    key = blake2b(ctx("chiploc v2 session key") + sid, key=q_lm)
    shown("session id", sid)
    shown("session key", key)

    # §6.5 answers: seq 42 and 44 were accepted (§9.2), 43 expired.
    nonces = {42: bytes(range(0x00, 0x20)), 43: bytes(range(0x20, 0x40)),
              44: bytes(range(0x40, 0x60))}
    rtts = {42: 1300000, 44: 1234567}

    def answer_layout(seq):
        return ctx("chiploc v2 answer") + be32(SUITE) + lm_pk + chip_pk + be64(seq) + nonces[seq]

    macs = {}
    for seq in (42, 44):
        macs[seq] = blake2b(answer_layout(seq), key=key)
        shown(f"MAC of seq {seq}", macs[seq])
    shown("answer layout of seq 42", answer_layout(42))

    # §6.6 transcript and the chip's signature.
    entries = b"".join(be64(s) + nonces[s] + macs[s] for s in (42, 44))
    transcript = (ctx("chiploc v2 transcript") + be32(SUITE) + sid + lm_pk + chip_pk + be32(2) +
                  entries)
    tsig = chip_id.sign(transcript)
    shown("transcript layout", transcript)
    shown("transcript signature", tsig)

    # §6.7 measurement record and the landmark's signature.
    rec_entries = b"".join(be64(s) + nonces[s] + macs[s] + be64(rtts[s]) for s in (42, 44))
    rtt_ns, probes_sent, measured = min(rtts.values()), 3, 1700000060000000000
    record = (ctx("chiploc v2 measurement") + body + sig_lm + sig_chip + be32(2) + rec_entries +
              tsig + be64(rtt_ns) + be32(probes_sent) + be64(measured))
    rsig = lm_id.sign(record)
    shown("measurement layout", record)
    shown("record signature", rsig)

    # §6.8 storage form.
    shown("handshake blob", lm_e + chip_e + lm_nonce + chip_nonce + sig_lm + sig_chip)
    shown("probes blob", rec_entries)

    # An offline auditor: the four signatures verify under the public keys
    # alone, and fail for a record changed in one byte.
    pub_lm = Ed25519PublicKey.from_public_bytes(lm_pk)
    pub_chip = Ed25519PublicKey.from_public_bytes(chip_pk)
    checks = ((pub_lm, rsig, record), (pub_chip, tsig, transcript), (pub_lm, sig_lm, hs_lm),
              (pub_chip, sig_chip, hs_chip))
    for pub, sig, msg in checks:
        pub.verify(sig, msg)
        bad = bytearray(msg)
        bad[len(bad) // 2] ^= 1
        try:
            pub.verify(sig, bytes(bad))
            failures.append("a signature verified over a changed layout")
        except InvalidSignature:
            pass

    # The bound at c of §8.4: ceil(c * rtt / 2 / 1e9) metres, exactly.
    bound = -(-299792458 * rtt_ns // 2_000_000_000)
    if f"{bound}m" not in doc:
        failures.append(f"bound {bound} m is not in §9")

    for f in failures:
        print("FAIL:", f)
    print(f"test_protocol_independent: {len(failures)} failure(s), "
          f"{'ok' if not failures else 'the document and this implementation disagree'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
