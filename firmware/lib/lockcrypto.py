# Cryptographic primitives of the lock protocol (docs/protocol.md §1, §4.2, §5, §6):
# HMAC-SHA256 (RFC 2104), constant-time compare, AES key wrap (RFC 3394),
# AES-CTR built from ECB, key derivation and the per-epoch purpose keys.
# Target is MicroPython (hashlib, cryptolib, os.urandom); CPython works too.
import hashlib
import os
import struct

try:
    from cryptolib import aes as _aes
except ImportError:  # CPython: the same interface over `cryptography`
    from lockcompat import aes as _aes

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# Immutable module constants. HMAC pads as integers (one XOR per pad, much
# faster than a byte loop in MicroPython); a leading 0x01 keeps every XOR and
# conversion at 65 bytes whatever the key's leading bytes (no data-dependent length).
_IPAD = int.from_bytes(b"\x01" + b"\x36" * 64, "big")
_OPAD = int.from_bytes(b"\x01" + b"\x5c" * 64, "big")
_KW_IV = b"\xa6" * 8
_ECB = const(1)


def sha256(data):
    return hashlib.sha256(data).digest()


def hmac_sha256(key, msg):
    # RFC 2104 with a 64-byte block; keys longer than the block are hashed first.
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    k = int.from_bytes(bytes(key) + bytes(64 - len(key)), "big")
    h = hashlib.sha256((k ^ _IPAD).to_bytes(65, "big")[1:])
    h.update(msg)
    inner = h.digest()
    h = hashlib.sha256((k ^ _OPAD).to_bytes(65, "big")[1:])
    h.update(inner)
    return h.digest()


def mac16(key, msg):
    return hmac_sha256(key, msg)[:16]


def mac8(key, msg):
    return hmac_sha256(key, msg)[:8]


def compare_digest(a, b):
    # Constant time in the content: every byte is visited, no early exit.
    # A length mismatch is public information and returns False at once.
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def random_bytes(n):
    return os.urandom(n)


def _check_kek(kek):
    if len(kek) not in (16, 24, 32):
        raise ValueError("kek length")


def _kw_wrap(enc, key):
    # RFC 3394 §2.2.1 (index-based). `enc` encrypts one 16-byte block.
    n = len(key) // 8
    if len(key) % 8 or n < 2:
        raise ValueError("key length")
    a = _KW_IV
    r = [key[i * 8:i * 8 + 8] for i in range(n)]
    for j in range(6):
        for i in range(n):
            b = enc(a + r[i])
            t = n * j + i + 1
            a = (int.from_bytes(b[:8], "big") ^ t).to_bytes(8, "big")
            r[i] = b[8:]
    return a + b"".join(r)


def _kw_unwrap(dec, wrapped):
    # RFC 3394 §2.2.2; integrity check on the IV in constant time.
    n = len(wrapped) // 8 - 1
    if len(wrapped) % 8 or n < 2:
        raise ValueError("wrapped length")
    a = wrapped[:8]
    r = [wrapped[8 + i * 8:16 + i * 8] for i in range(n)]
    for j in range(5, -1, -1):
        for i in range(n - 1, -1, -1):
            t = n * j + i + 1
            a = (int.from_bytes(a, "big") ^ t).to_bytes(8, "big")
            b = dec(a + r[i])
            a = b[:8]
            r[i] = b[8:]
    if not compare_digest(a, _KW_IV):
        raise ValueError("unwrap integrity")
    return b"".join(r)


def aes_key_wrap(kek, key):
    _check_kek(kek)
    return _kw_wrap(_aes(kek, _ECB).encrypt, key)


def aes_key_unwrap(kek, wrapped):
    # ValueError on bad length or integrity failure.
    _check_kek(kek)
    return _kw_unwrap(_aes(kek, _ECB).decrypt, wrapped)


def aes_ctr(key, prefix12, data):
    # Counter block j = prefix12 || u32(j), j = 0, 1, ...; last block truncated.
    if len(prefix12) != 12:
        raise ValueError("prefix length")
    n = len(data)
    if n == 0:
        return b""
    blocks = (n + 15) // 16
    ctr = bytearray(16 * blocks)
    for j in range(blocks):
        ctr[16 * j:16 * j + 12] = prefix12
        struct.pack_into(">I", ctr, 16 * j + 12, j)
    ks = _aes(key, _ECB).encrypt(bytes(ctr))[:n]
    x = int.from_bytes(bytes(data), "big") ^ int.from_bytes(ks, "big")
    return x.to_bytes(n, "big")


def derive(master, label, lock_id, epoch):
    # §1.1: HMAC(K_L, "LK1/" || label || 0x00 || lock_id || u32(epoch))
    return hmac_sha256(master, b"LK1/" + label + b"\x00" + bytes(lock_id) + struct.pack(">I", epoch))


def ticket_key(tk, ticket):
    # §2.2: K_T = HMAC(K_tk, ticket)
    return hmac_sha256(tk, ticket)


def session_key(k_t, nonce_l, nonce_p):
    # §4.2: K_S = HMAC(K_T, "LK1/session" || 0x00 || nonce_L || nonce_P)
    return hmac_sha256(k_t, b"LK1/session\x00" + bytes(nonce_l) + bytes(nonce_p))


def fmac(k_s, direction, ctr, body):
    # §4.2: MAC16(K_S, dir || u32(ctr) || body)
    return mac16(k_s, struct.pack(">BI", direction, ctr) + bytes(body))


class LockKeys:
    # The purpose keys of one epoch (§1.1). The master key itself is not kept.
    def __init__(self, master, lock_id, epoch):
        if len(master) != 32 or len(lock_id) != 8:
            raise ValueError("key material length")
        lock_id = bytes(lock_id)
        self.lock_id = lock_id
        self.epoch = epoch
        self.tk = derive(master, b"ticket", lock_id, epoch)
        self.jm = derive(master, b"journal-mac", lock_id, epoch)
        self.je = derive(master, b"journal-enc", lock_id, epoch)
        self.wr = derive(master, b"wrap", lock_id, epoch)
        self.sv = derive(master, b"server", lock_id, epoch)

    def __repr__(self):
        return "<LockKeys %s epoch %d>" % (self.lock_id.hex(), self.epoch)

    __str__ = __repr__
