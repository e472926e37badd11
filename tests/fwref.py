"""Independent CPython reference for the firmware tests (hmac, hashlib, cryptography).

Written straight from docs/protocol.md, without lockproto (developed in parallel)
and without firmware/lib, so the firmware's bytes are checked by a second
implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LOCK_ID = bytes.fromhex("1011121314151617")
MASTER = bytes(range(32))
MASTER2 = bytes(range(100, 132))
NOW = 1_700_000_000  # Tuesday 2023-11-14 22:13:20 UTC
NONCE_L = b"\xa5" * 16
NONCE_P = b"\x5a" * 16

TICKET_FMT = ">B8sIIIIIIBHHBh"
FIELDS = ("format", "lock_id", "epoch", "ticket_id", "user_id", "not_before", "not_after",
          "issued_at", "rights", "win_start", "win_end", "win_days", "tz_offset")


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def hm(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def derive(master: bytes, label: bytes, lock_id: bytes, epoch: int) -> bytes:
    return hm(master, b"LK1/" + label + b"\x00" + lock_id + u32(epoch))


def keys(master: bytes = MASTER, lock_id: bytes = LOCK_ID, epoch: int = 1) -> dict:
    labels = {"tk": b"ticket", "jm": b"journal-mac", "je": b"journal-enc", "wr": b"wrap", "sv": b"server"}
    return {k: derive(master, v, lock_id, epoch) for k, v in labels.items()}


def ticket(**fields) -> bytes:
    d = {"format": 1, "lock_id": LOCK_ID, "epoch": 1, "ticket_id": 77, "user_id": 5,
         "not_before": NOW - 600, "not_after": NOW + 3600, "issued_at": NOW - 600,
         "rights": 0x0F, "win_start": 0, "win_end": 0, "win_days": 0, "tz_offset": 0}
    d.update(fields)
    return struct.pack(TICKET_FMT, *[d[f] for f in FIELDS])


def session_key(tk: bytes, ticket_bytes: bytes, nonce_l: bytes, nonce_p: bytes) -> bytes:
    return hm(hm(tk, ticket_bytes), b"LK1/session\x00" + nonce_l + nonce_p)


def fmac(ks: bytes, direction: int, ctr: int, body: bytes) -> bytes:
    return hm(ks, bytes([direction]) + u32(ctr) + body)[:16]


def rekey_proof(master_new: bytes, new_epoch: int, lock_id: bytes = LOCK_ID) -> bytes:
    sv = derive(master_new, b"server", lock_id, new_epoch)
    return u32(new_epoch) + hm(sv, b"LK1/rekey-proof\x00" + lock_id + u32(new_epoch))[:16]


def rekey_args(old: dict, old_epoch: int, new_epoch: int, new_master: bytes,
               lock_id: bytes = LOCK_ID) -> bytes:
    wrapped = keywrap.aes_key_wrap(old["wr"], new_master)
    mac = hm(old["sv"], b"LK1/rekey\x00" + lock_id + u32(old_epoch) + u32(new_epoch) + wrapped)[:16]
    return u32(new_epoch) + wrapped + mac


def ctr_crypt(key: bytes, prefix12: bytes, data: bytes) -> bytes:
    # counter block prefix || u32(j); cryptography's CTR increments the whole block,
    # which is the same while j stays below 2**32
    enc = Cipher(algorithms.AES(key), modes.CTR(prefix12 + bytes(4))).encryptor()
    return enc.update(data) + enc.finalize()


def chain_genesis(jm: bytes, lock_id: bytes = LOCK_ID) -> bytes:
    return hm(jm, b"LK1/chain\x00" + lock_id)[:8]


def open_chunk(k: dict, chunk: bytes, lock_id: bytes = LOCK_ID):
    """Verify and decrypt an export chunk (§6.3): (epoch, first, head, prev_chain, records)."""
    epoch, first, count, head = struct.unpack(">IIBI", chunk[:13])
    prev = chunk[13:21]
    assert len(chunk) == 37 + 32 * count
    ct = chunk[21:-16]
    emac = hm(k["jm"], b"LK1/export\x00" + lock_id + chunk[:21] + ct)[:16]
    assert hmac.compare_digest(emac, chunk[-16:]), "emac"
    recs = [ctr_crypt(k["je"], lock_id + u32(first + i), ct[32 * i:32 * i + 32]) for i in range(count)]
    return epoch, first, head, prev, recs


def verify_chain(jm_for_seq, prev: bytes, records) -> bool:
    """jm_for_seq(seq) -> K_jm in force for that record."""
    for r in records:
        seq = struct.unpack(">I", r[:4])[0]
        want = hm(jm_for_seq(seq), prev + r[:24])[:8]
        if want != r[24:]:
            return False
        prev = r[24:]
    return True


def time_token(k: dict, t: int, nonce_l: bytes, epoch: int = 1, lock_id: bytes = LOCK_ID) -> bytes:
    return u32(t) + hm(k["sv"], b"LK1/time\x00" + lock_id + u32(epoch) + nonce_l + u32(t))[:16]


def deny_list(k: dict, version: int, entries, epoch: int = 1, lock_id: bytes = LOCK_ID,
              count: int | None = None) -> bytes:
    body = u32(version) + bytes([len(entries) if count is None else count])
    body += b"".join(struct.pack(">BII", *e) for e in entries)
    return body + hm(k["sv"], b"LK1/deny\x00" + lock_id + u32(epoch) + body)[:16]


def ack(k: dict, seq: int, chain: bytes, epoch: int = 1, lock_id: bytes = LOCK_ID) -> bytes:
    return u32(seq) + chain + hm(k["sv"], b"LK1/ack\x00" + lock_id + u32(epoch) + u32(seq) + chain)[:16]
