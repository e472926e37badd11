# Server statements relayed by phones (docs/protocol.md §5, §6.4), checked with
# the lock's keys of its current epoch (a LockKeys). All failures raise ProtoError.
import struct
from lockcodes import (
    E_MALFORMED, E_BAD_MAC, E_STALE, E_UNWRAP_FAILED, E_CAPACITY,
    DK_TICKET, DK_USER, DENY_CAPACITY, DENY_ENTRY_LEN, MAC_LEN, NONCE_LEN,
    TIME_TOKEN_LEN, REKEY_LEN, ACK_LEN, CHAIN_LEN, WRAPPED_LEN,
)
from lockcrypto import mac16, compare_digest, aes_key_unwrap
from lockwire import ProtoError


def _u32(v):
    return struct.pack(">I", v)


def _bound(keys, label):
    # "LK1/" label 0x00 lock_id u32(epoch): the common MAC prefix of statements
    return b"LK1/" + label + b"\x00" + keys.lock_id + _u32(keys.epoch)


def _check(key, msg, mac):
    if not compare_digest(mac16(key, msg), mac):
        raise ProtoError(E_BAD_MAC)


def _bytes(args, n=None):
    args = bytes(args)
    if n is not None and len(args) != n:
        raise ProtoError(E_MALFORMED)
    return args


def verify_time_token(keys, nonce_l, args):
    # §5.1: u32 time || MAC16(K_sv, "LK1/time" 0x00 lock_id u32(epoch) nonce_L u32(time))
    args = _bytes(args, TIME_TOKEN_LEN)
    if len(nonce_l) != NONCE_LEN:
        raise ProtoError(E_MALFORMED)
    t = struct.unpack(">I", args[:4])[0]
    _check(keys.sv, _bound(keys, b"time") + bytes(nonce_l) + args[:4], args[4:])
    return t


def verify_deny(keys, args):
    # §5.2 -> (version, [(kind, id, expires), ...]). Length, then MAC, then capacity
    # and kinds: nothing inside an unauthenticated list is interpreted.
    args = _bytes(args)
    if len(args) < 5 + MAC_LEN:
        raise ProtoError(E_MALFORMED)
    version, count = struct.unpack(">IB", args[:5])
    if len(args) != 5 + DENY_ENTRY_LEN * count + MAC_LEN:
        raise ProtoError(E_MALFORMED)
    _check(keys.sv, _bound(keys, b"deny") + args[:-MAC_LEN], args[-MAC_LEN:])
    if count > DENY_CAPACITY:
        raise ProtoError(E_CAPACITY)
    entries = []
    for i in range(count):
        kind, ident, expires = struct.unpack(">BII", args[5 + DENY_ENTRY_LEN * i:5 + DENY_ENTRY_LEN * (i + 1)])
        if kind != DK_TICKET and kind != DK_USER:
            raise ProtoError(E_MALFORMED)
        entries.append((kind, ident, expires))
    return version, entries


def open_rekey(keys, args):
    # §5.3 -> (new_epoch, new_master). Order: STALE, BAD_MAC, UNWRAP_FAILED; the
    # MAC is verified before the unwrap touches the wrapped key.
    args = _bytes(args, REKEY_LEN)
    new_epoch = struct.unpack(">I", args[:4])[0]
    if new_epoch <= keys.epoch:
        raise ProtoError(E_STALE)
    wrapped = args[4:4 + WRAPPED_LEN]
    _check(keys.sv, _bound(keys, b"rekey") + args[:4] + wrapped, args[4 + WRAPPED_LEN:])
    try:
        master = aes_key_unwrap(keys.wr, wrapped)
    except ValueError:
        raise ProtoError(E_UNWRAP_FAILED)
    return new_epoch, master


def rekey_proof(new_keys):
    # §5.3: u32 new_epoch || MAC16(K_sv(new), "LK1/rekey-proof" 0x00 lock_id u32(new_epoch))
    return _u32(new_keys.epoch) + mac16(new_keys.sv, _bound(new_keys, b"rekey-proof"))


def verify_ack(keys, args):
    # §6.4 -> (seq, chain): u32 seq || chain(8) || MAC16(K_sv, "LK1/ack" 0x00 lock_id u32(epoch) u32(seq) chain)
    args = _bytes(args, ACK_LEN)
    _check(keys.sv, _bound(keys, b"ack") + args[:4 + CHAIN_LEN], args[4 + CHAIN_LEN:])
    return struct.unpack(">I", args[:4])[0], args[4:4 + CHAIN_LEN]


def verify_factory_reset(keys, nonce_l, args):
    # §3.4: MAC16(K_sv, "LK1/factory-reset" 0x00 lock_id u32(epoch) nonce_L)
    args = _bytes(args, MAC_LEN)
    if len(nonce_l) != NONCE_LEN:
        raise ProtoError(E_MALFORMED)
    _check(keys.sv, _bound(keys, b"factory-reset") + bytes(nonce_l), args)


def provisioned_proof(keys, nonce_l):
    # §3.4: the unit's proof that it holds the key it was given, bound to nonce_L
    return mac16(keys.sv, _bound(keys, b"provisioned") + bytes(nonce_l))
