"""Host side (lockproto.crypto): HMAC, derivation, key wrap (RFC 3394), AES-CTR with explicit counter blocks."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import assume, given, settings, strategies as st

from lockproto import Err, LockKeys, ProtocolError, issue_ticket, new_master
from lockproto.crypto import (
    aes_ctr, aes_key_unwrap, aes_key_wrap, compare_digest, derive, hmac_sha256, mac8, mac16, session_key, ticket_key,
)

VECTORS = Path(__file__).resolve().parent / "vectors"
NOW = 1_767_225_600

# RFC 3394 §4.1-4.6 (KEK, key data, wrapped), copied from the RFC
RFC3394 = [
    ("000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF",
     "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
    ("000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF",
     "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D"),
    ("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF",
     "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"),
    ("000102030405060708090A0B0C0D0E0F1011121314151617", "00112233445566778899AABBCCDDEEFF0001020304050607",
     "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2"),
    ("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
     "00112233445566778899AABBCCDDEEFF0001020304050607",
     "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"),
    ("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
     "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
     "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"),
]


@pytest.mark.parametrize("kek,key,wrapped", RFC3394, ids=[f"4.{i}" for i in range(1, 7)])
def test_key_wrap_rfc3394(kek, key, wrapped):
    kek, key, wrapped = (bytes.fromhex(x) for x in (kek, key, wrapped))
    assert aes_key_wrap(kek, key) == wrapped
    assert aes_key_unwrap(kek, wrapped) == key
    bad = bytearray(wrapped)
    bad[0] ^= 1
    with pytest.raises(ProtocolError) as e:
        aes_key_unwrap(kek, bytes(bad))
    assert e.value.code == Err.UNWRAP_FAILED


def test_rfc3394_file_agrees_with_the_rfc():
    cases = json.loads((VECTORS / "rfc3394.json").read_text())["cases"]
    assert [(c["kek"].upper(), c["key"].upper(), c["wrapped"].upper()) for c in cases] == RFC3394


@given(st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
       st.integers(2, 8).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)))
def test_key_wrap_round_trip(kek, key):
    assert aes_key_unwrap(kek, aes_key_wrap(kek, key)) == key


def test_unwrap_of_wrong_length_is_unwrap_failed():
    with pytest.raises(ProtocolError) as e:
        aes_key_unwrap(bytes(32), bytes(41))
    assert e.value.code == Err.UNWRAP_FAILED


def test_hmac_and_truncations():
    # RFC 4231 test case 2
    mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert mac16(b"Jefe", b"what do ya want for nothing?") == mac[:16]
    assert mac8(b"Jefe", b"what do ya want for nothing?") == mac[:8]
    assert compare_digest(b"abc", bytearray(b"abc")) and not compare_digest(b"abc", b"abd")
    assert not compare_digest(b"abc", b"ab")


def test_derive_is_the_spec_formula():
    master, lock_id = bytes(range(32)), bytes.fromhex("4c4b000000000001")
    want = hmac.new(master, b"LK1/journal-mac\x00" + lock_id + b"\x00\x00\x00\x07", hashlib.sha256).digest()
    assert derive(master, "journal-mac", lock_id, 7) == want
    keys = LockKeys.from_master(master, lock_id, 7)
    assert keys.jm == want
    assert [keys.tk, keys.je, keys.wr, keys.sv] == [derive(master, label, lock_id, 7)
                                                     for label in ("ticket", "journal-enc", "wrap", "server")]
    assert len({keys.tk, keys.jm, keys.je, keys.wr, keys.sv}) == 5


@pytest.mark.parametrize("args", [(bytes(31), "ticket", bytes(8), 1), (bytes(32), "ticket", bytes(7), 1),
                                  (bytes(32), "ticket", bytes(8), -1), (bytes(32), "ticket", bytes(8), 2**32)])
def test_derive_refuses_bad_inputs(args):
    with pytest.raises(ValueError):
        derive(*args)


def test_lock_keys_repr_hides_keys():
    keys = LockKeys.from_master(bytes(range(32)), b"L" * 8, 3)
    text = repr(keys)
    assert text == "LockKeys(lock_id=4c4c4c4c4c4c4c4c, epoch=3)"
    for k in (keys.tk, keys.jm, keys.je, keys.wr, keys.sv):
        assert k.hex() not in text and repr(k) not in text
    assert "tk" not in text and "sv" not in text
    with pytest.raises(ValueError):
        LockKeys.from_master(bytes(32), b"L" * 8, 0)  # epochs start at 1
    with pytest.raises(Exception):
        keys.epoch = 4  # frozen


def test_new_master_is_random():
    a, b = new_master(), new_master()
    assert len(a) == 32 and a != b


def _reference_ctr(key, prefix, data):
    blocks = b"".join(prefix + j.to_bytes(4, "big") for j in range((len(data) + 15) // 16))
    stream = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(blocks)
    return bytes(a ^ b for a, b in zip(data, stream))


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=12, max_size=12), st.binary(max_size=100))
def test_aes_ctr_is_the_explicit_counter_blocks(key, prefix, data):
    out = aes_ctr(key, prefix, data)
    assert out == _reference_ctr(key, prefix, data) and len(out) == len(data)
    assert aes_ctr(key, prefix, out) == data


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=12, max_size=12), st.binary(max_size=64))
def test_aes_ctr_matches_cryptography_ctr_for_records(key, prefix, data):
    # for the lengths used (32-byte records: j = 0, 1) the 128-bit increment of CTR mode is the same
    # as the explicit 32-bit counter, unless the low word would carry (it starts at 0 here)
    ctr = Cipher(algorithms.AES(key), modes.CTR(prefix + bytes(4))).encryptor().update(data)
    assert aes_ctr(key, prefix, data) == ctr


def test_aes_ctr_record_counter_blocks_by_hand():
    key, lock_id, seq = bytes(range(32)), bytes.fromhex("4c4b000000000001"), 7
    rec = bytes(range(32))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    ks = ecb.update(lock_id + seq.to_bytes(4, "big") + bytes(4) + lock_id + seq.to_bytes(4, "big") + b"\0\0\0\1")
    assert aes_ctr(key, lock_id + seq.to_bytes(4, "big"), rec) == bytes(a ^ b for a, b in zip(rec, ks))
    with pytest.raises(ValueError):
        aes_ctr(key, bytes(11), rec)


SHIFT = dict(ticket_id=7, user_id=3, not_before=NOW, not_after=NOW + 3600, issued_at=NOW, rights=1)


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32),
       st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8), st.integers(1, 2**32 - 2))
@settings(max_examples=100)
def test_ticket_key_for_lock_a_never_fits_lock_b(ma, mb, la, lb, epoch):
    assume((ma, la) != (mb, lb))
    ta, k_a = issue_ticket(LockKeys.from_master(ma, la, epoch), **SHIFT)
    keys_b = LockKeys.from_master(mb, lb, epoch)
    # whatever lock B computes for this ticket (as it would from AUTH) is not the phone's K_T
    assert ticket_key(keys_b, ta.encode()) != k_a
    _, k_b = issue_ticket(keys_b, **SHIFT)
    assert k_a != k_b
    # same lock, the next epoch: another key too
    assert issue_ticket(LockKeys.from_master(ma, la, epoch + 1), **SHIFT)[1] != k_a


def test_session_key_formula():
    k_t, nl, np_ = bytes(range(32)), bytes(16), b"\x01" * 16
    assert session_key(k_t, nl, np_) == hmac_sha256(k_t, b"LK1/session\x00" + nl + np_)
    assert session_key(k_t, np_, nl) != session_key(k_t, nl, np_)
