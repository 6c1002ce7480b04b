#!/usr/bin/env python3
"""An independent check of an exported attestation (`chiploc attestation
export`), written from docs/ATTESTATION.md alone and sharing no code with
chiploc: the JWS is verified by PyJWT (Debian's python3-jwt), the embedded
layout's signature by python3-cryptography, and the layout is decoded with
struct at the offsets of the document's tables.

Usage: test_attestation_jwt.py TOKEN_FILE VERIFIER_PUBKEY_HEX

Checks, in order: the header (alg EdDSA, typ eat+jwt, kid the key); the JWS
signature (jwt.decode with algorithms=["EdDSA"] only); the eat_profile; the
embedded layout's Ed25519 signature under the same key; every claim that
the layout holds against the layout's bytes (chip, times, verdicts, centre,
radius, digests, prev_hash) and the chain hash; then that the token is
refused by PyJWT when its payload is changed, when its header says
"alg": "none", and under another key. Exit 0 when the token passes all of
that, 1 (naming the first failure) otherwise, 2 on a usage error.
"""

import base64
import hashlib
import json
import struct
import sys

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PROFILE = "tag:chiploc,2026:attestation-result:1"
CONSISTENCY = ["CONSISTENT", "INSUFFICIENT", "INCONSISTENT"]
SITE = ["UNKNOWN", "SITE_CONSISTENT", "SITE_EXCLUDED"]
REGION = ["UNKNOWN", "INSIDE", "OUTSIDE", "UNDETERMINED"]


class Invalid(Exception):
    pass


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def expect(cond, what):
    if not cond:
        raise Invalid(what)


def decode_layout(layout):
    """The fields of docs/ATTESTATION.md's tables (version 1: 303 bytes,
    version 2: 399)."""
    if len(layout) == 303 and layout[:23] == b"chiploc v1 attestation\0":
        version = 1
    elif len(layout) == 399 and layout[:23] == b"chiploc v2 attestation\0":
        version = 2
    else:
        raise Invalid("the embedded layout is neither version 1 nor 2")
    f = {"version": version}
    f["chip"], f["verifier"] = layout[23:55], layout[55:87]
    f["round_end_ns"], f["window_ns"] = struct.unpack(">QQ", layout[87:103])
    f["prev_hash"] = layout[103:135]
    f["consistency"], f["site"], f["region"], f["n_excluded"] = layout[135:139]
    (f["speed"], f["lat_e7"], f["lon_e7"], f["radius_m"]) = struct.unpack(
        ">Qiiq", layout[139:163]
    )
    f["site_landmark"] = layout[163:195]
    (f["margin_m"],) = struct.unpack(">q", layout[195:203])
    f["allowed"], f["excluded"] = layout[203:235], layout[235:267]
    (f["n_measurements"],) = struct.unpack(">I", layout[267:271])
    f["measurements"] = layout[271:303]
    if version == 2:
        f["site_digest"], f["landmarks"], f["regions"] = (
            layout[303:335],
            layout[335:367],
            layout[367:399],
        )
    return f


def check(token, pk_hex):
    pk_bytes = bytes.fromhex(pk_hex)
    key = Ed25519PublicKey.from_public_bytes(pk_bytes)
    header = jwt.get_unverified_header(token)
    expect(header == {"alg": "EdDSA", "typ": "eat+jwt", "kid": pk_hex},
           "header %r" % header)
    # The JWS: EdDSA only; no exp is set, none is required.
    claims = jwt.decode(token, key=key, algorithms=["EdDSA"],
                        options={"require": ["iss", "sub", "iat", "nbf"]})
    expect(claims["eat_profile"] == PROFILE, "eat_profile")
    c = claims["chiploc"]
    layout, sig = b64d(c["layout"]), b64d(c["signature"])
    try:
        key.verify(sig, layout)
    except InvalidSignature:
        raise Invalid("the embedded layout's signature does not verify")
    f = decode_layout(layout)
    expect(f["verifier"] == pk_bytes, "layout verifier")
    expect(b64d(claims["sub"]) == f["chip"], "sub is not the layout's chip")
    expect(claims["iat"] == f["round_end_ns"] // 10**9, "iat")
    expect(claims["nbf"] == (f["round_end_ns"] - f["window_ns"]) // 10**9, "nbf")
    expect(c["layout_version"] == f["version"], "layout_version")
    expect(c["round_end_ns"] == f["round_end_ns"], "round_end_ns")
    expect(c["window_ns"] == f["window_ns"], "window_ns")
    expect(c["consistency"] == CONSISTENCY[f["consistency"]], "consistency")
    expect(c["site_verdict"] == SITE[f["site"]], "site_verdict")
    expect(c["region_verdict"] == REGION[f["region"]], "region_verdict")
    expect(c["radius_m"] == f["radius_m"], "radius_m")
    expect((c["centre_lat_e7"], c["centre_lon_e7"]) == (f["lat_e7"], f["lon_e7"]), "centre")
    expect(c["speed_m_per_s"] == f["speed"], "speed")
    expect(c["site_margin_m"] == f["margin_m"], "site_margin_m")
    expect(c["site_landmark"] == (None if f["site_landmark"] == bytes(32)
                                  else f["site_landmark"].hex()), "site_landmark")
    expect(c["n_measurements"] == f["n_measurements"], "n_measurements")
    if f["consistency"] == 0:
        loc = claims["location"]
        expect(round(loc["latitude"] * 1e7) == f["lat_e7"], "location.latitude")
        expect(round(loc["longitude"] * 1e7) == f["lon_e7"], "location.longitude")
        expect(loc["accuracy"] == f["radius_m"], "location.accuracy")
    else:
        expect("location" not in claims, "a location without a consistent verdict")
    # Lists stated in clear must give the signed digests.
    codes = sorted(x.encode() for x in c["allowed_regions"])
    expect(hashlib.sha256(b",".join(codes)).digest() == f["allowed"], "allowed_regions")
    keys = sorted(bytes.fromhex(x) for x in c["excluded_landmarks"])
    expect(len(keys) == f["n_excluded"], "excluded_landmarks count")
    expect(hashlib.sha256(b"".join(keys)).digest() == f["excluded"], "excluded_landmarks")
    d = c["digests"]
    expect(d["allowed"] == f["allowed"].hex() and d["excluded"] == f["excluded"].hex()
           and d["measurements"] == f["measurements"].hex(), "digests")
    if f["version"] == 2:
        expect(d["site"] == f["site_digest"].hex() and d["landmarks"] == f["landmarks"].hex()
               and d["regions"] == f["regions"].hex(), "input digests")
    ctx = b"chiploc v%d attestation-hash\0" % f["version"]
    expect(c["chain"]["hash"] == hashlib.sha256(ctx + layout + sig).hexdigest(), "chain.hash")
    expect(c["chain"]["prev_hash"] == f["prev_hash"].hex(), "chain.prev_hash")
    expect(isinstance(c["chain"]["position"], int) and c["chain"]["position"] >= 1,
           "chain.position")

    # What PyJWT must refuse: a payload changed under the same signature...
    h64, p64, s64 = token.split(".")
    other = dict(claims, chiploc=dict(c, consistency="CONSISTENT" if
                                      c["consistency"] != "CONSISTENT" else "INCONSISTENT"))
    forged = ".".join([h64, b64e(json.dumps(other).encode()), s64])
    refused(lambda: jwt.decode(forged, key=key, algorithms=["EdDSA"]), "a changed payload")
    # ..."alg": "none"...
    none = ".".join([b64e(b'{"alg":"none","typ":"eat+jwt"}'), p64, ""])
    refused(lambda: jwt.decode(none, key=key, algorithms=["EdDSA"]), "alg none")
    # ...and the genuine token under another key.
    stranger = Ed25519PrivateKey.generate().public_key()
    refused(lambda: jwt.decode(token, key=stranger, algorithms=["EdDSA"]), "another key")
    return claims


def refused(fn, what):
    try:
        fn()
    except jwt.exceptions.InvalidTokenError:
        return
    raise Invalid("PyJWT accepted %s" % what)


def main(argv):
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with open(argv[1], encoding="ascii") as f:
        token = f.read().strip()
    try:
        claims = check(token, argv[2].strip().lower())
    except (Invalid, jwt.exceptions.InvalidTokenError, KeyError, TypeError, ValueError) as e:
        print("test_attestation_jwt: INVALID: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    c = claims["chiploc"]
    print("test_attestation_jwt: valid: %s by %s, record %d: %s %s %s" % (
        c["serial"], claims["iss"], c["chain"]["position"], c["consistency"],
        c["site_verdict"], c["region_verdict"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
