"""firmware/lib/lockcrypto.py under the real MicroPython: published vectors and
cross-checks against CPython's hmac and cryptography."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import keywrap
from hypothesis import given, settings, strategies as st

import fwref

pytestmark = pytest.mark.mpy

VECTORS = Path(__file__).resolve().parent / "vectors"
RFC4231 = json.loads((VECTORS / "rfc4231.json").read_text())["cases"]
RFC3394 = json.loads((VECTORS / "rfc3394.json").read_text())["cases"]
B = bytes.fromhex


# ---- the vector files themselves are right (a wrong remembered value is caught here) ----

@pytest.mark.parametrize("case", RFC4231, ids=lambda c: f"rfc4231-{c['case']}")
def test_rfc4231_file_matches_cpython(case):
    want = B(case["hmac_sha256"])
    assert hmac.new(B(case["key"]), B(case["data"]), hashlib.sha256).digest()[:len(want)] == want


@pytest.mark.parametrize("case", RFC3394, ids=lambda c: f"rfc3394-{c['section']}")
def test_rfc3394_file_matches_cryptography(case):
    assert keywrap.aes_key_wrap(B(case["kek"]), B(case["key"])) == B(case["wrapped"])


# ---- firmware against the published vectors ----

@pytest.mark.parametrize("case", RFC4231, ids=lambda c: f"rfc4231-{c['case']}")
def test_hmac_rfc4231(fw, case):
    want = B(case["hmac_sha256"])
    got = fw.call("lockcrypto.hmac_sha256", B(case["key"]), B(case["data"]))
    assert got[:len(want)] == want
    if len(want) == 32:
        assert got == want


@pytest.mark.parametrize("case", RFC3394, ids=lambda c: f"rfc3394-{c['section']}")
def test_key_wrap_rfc3394(fw, case):
    kek, key, wrapped = B(case["kek"]), B(case["key"]), B(case["wrapped"])
    if len(kek) == 24:
        # MicroPython's cryptolib has no AES-192: the firmware says so cleanly ...
        assert fw.call("fwtest.call", "lockcrypto.aes_key_wrap", [kek, key])[:2] == ["exc", "ValueError"]
        # ... and its RFC 3394 core is run over a test-only pure-Python AES instead
        assert fw.call("fwtest.kw_pyaes", kek, key, False) == ["ok", wrapped]
        assert fw.call("fwtest.kw_pyaes", kek, wrapped, True) == ["ok", key]
        return
    assert fw.call("lockcrypto.aes_key_wrap", kek, key) == wrapped
    assert fw.call("lockcrypto.aes_key_unwrap", kek, wrapped) == key
    # the pure-Python AES path agrees on the 128/256-bit vectors too
    assert fw.call("fwtest.kw_pyaes", kek, key, False) == ["ok", wrapped]


def test_unwrap_integrity_failures(fw):
    kek = bytes(range(32))
    key = bytes(range(32, 64))
    wrapped = keywrap.aes_key_wrap(kek, key)
    args = []
    for i in range(len(wrapped)):
        for x in (0x01, 0x80):
            b = bytearray(wrapped)
            b[i] ^= x
            args.append([kek, bytes(b)])
    # wrong kek, wrong lengths
    args += [[bytes(32), wrapped], [kek, wrapped[:-8]], [kek, wrapped[:-1]], [kek, wrapped[:16]],
             [kek, b""], [kek, wrapped + bytes(8)], [kek[:20], wrapped]]
    out = fw.call("fwtest.call_many", "lockcrypto.aes_key_unwrap", args)
    for a, r in zip(args, out):
        assert r[:2] == ["exc", "ValueError"], (a, r)


@settings(max_examples=40, deadline=None)
@given(kek=st.sampled_from([16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       key=st.integers(2, 8).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)))
def test_wrap_matches_cryptography(fw, kek, key):
    wrapped = fw.call("lockcrypto.aes_key_wrap", kek, key)
    assert wrapped == keywrap.aes_key_wrap(kek, key)
    assert fw.call("lockcrypto.aes_key_unwrap", kek, wrapped) == key


@settings(max_examples=150, deadline=None)
@given(key=st.binary(max_size=200), msg=st.binary(max_size=300))
def test_hmac_matches_cpython(fw, key, msg):
    want = hmac.new(key, msg, hashlib.sha256).digest()
    assert fw.call("lockcrypto.hmac_sha256", key, msg) == want
    assert fw.call("lockcrypto.mac16", key, msg) == want[:16]
    assert fw.call("lockcrypto.mac8", key, msg) == want[:8]


def test_sha256(fw):
    for data in (b"", b"abc", bytes(1000)):
        assert fw.call("lockcrypto.sha256", data) == hashlib.sha256(data).digest()


def test_compare_digest(fw):
    a = bytes(range(16))
    cases = [(a, a, True), (a, a[:15], False), (a[:15], a, False), (b"", b"", True)]
    for i in range(16):
        b = bytearray(a)
        b[i] ^= 0x40
        cases.append((a, bytes(b), False))
    for x, y, want in cases:
        assert fw.call("lockcrypto.compare_digest", x, y) is want


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), prefix=st.binary(min_size=12, max_size=12),
       data=st.binary(max_size=100))
def test_aes_ctr_matches_cryptography(fw, key, prefix, data):
    got = fw.call("lockcrypto.aes_ctr", key, prefix, data)
    assert got == fwref.ctr_crypt(key, prefix, data)
    assert fw.call("lockcrypto.aes_ctr", key, prefix, got) == data


def test_derive_and_lockkeys(fw):
    for epoch in (1, 2, 0xFFFFFFFF):
        want = fwref.keys(fwref.MASTER, fwref.LOCK_ID, epoch)
        got = fw.call("fwtest.lock_keys", fwref.MASTER, fwref.LOCK_ID, epoch)
        for k in ("tk", "jm", "je", "wr", "sv"):
            assert got[k] == want[k]
        assert got["epoch"] == epoch and got["lock_id"] == fwref.LOCK_ID
        # repr shows the lock id and epoch, never key material
        r = got["repr"]
        assert fwref.LOCK_ID.hex() in r and str(epoch) in r
        for k in ("tk", "jm", "je", "wr", "sv"):
            assert want[k].hex()[:8] not in r
        assert fwref.MASTER.hex()[:8] not in r
    assert fw.call("lockcrypto.derive", fwref.MASTER, b"ticket", fwref.LOCK_ID, 7) == \
        fwref.derive(fwref.MASTER, b"ticket", fwref.LOCK_ID, 7)


def test_session_helpers(fw):
    t = fwref.ticket()
    k = fwref.keys()
    kt = fw.call("lockcrypto.ticket_key", k["tk"], t)
    ks = fw.call("lockcrypto.session_key", kt, fwref.NONCE_L, fwref.NONCE_P)
    assert ks == fwref.session_key(k["tk"], t, fwref.NONCE_L, fwref.NONCE_P)
    assert fw.call("lockcrypto.fmac", ks, 0x50, 7, b"body") == fwref.fmac(ks, 0x50, 7, b"body")


def test_random_bytes(fw):
    a = fw.call("lockcrypto.random_bytes", 16)
    b = fw.call("lockcrypto.random_bytes", 16)
    assert len(a) == 16 and a != b


def test_firmware_modules_import_under_cpython():
    """The same files import and agree under CPython (cryptography stands in for cryptolib)."""
    lib = str(Path(__file__).resolve().parent.parent / "firmware" / "lib")
    sys.path.insert(0, lib)
    try:
        mods = [importlib.import_module(m) for m in
                ("lockcodes", "lockcrypto", "lockwire", "lockticket", "lockfrag", "lockmsg",
                 "lockrecord", "locksession")]
        lc = mods[1]
        for case in RFC4231:
            want = B(case["hmac_sha256"])
            assert lc.hmac_sha256(B(case["key"]), B(case["data"]))[:len(want)] == want
        for case in RFC3394:
            assert lc.aes_key_wrap(B(case["kek"]), B(case["key"])) == B(case["wrapped"])
            assert lc.aes_key_unwrap(B(case["kek"]), B(case["wrapped"])) == B(case["key"])
        key, prefix = os.urandom(32), os.urandom(12)
        assert lc.aes_ctr(key, prefix, b"x" * 40) == fwref.ctr_crypt(key, prefix, b"x" * 40)
    finally:
        sys.path.remove(lib)
        for m in ("lockcodes", "lockcrypto", "lockwire", "lockticket", "lockfrag", "lockmsg",
                  "lockrecord", "locksession"):
            sys.modules.pop(m, None)
