# Server statements relayed by phones (docs/protocol.md §5, §6.4), checked with
# the lock's keys of its current epoch (a LockKeys). All failures raise ProtoError.
import struct
from lockcrypto import mac16, compare_digest, aes_key_unwrap
from lockwire import ProtoError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_E_MALFORMED = const(1)
_E_BAD_MAC = const(9)
_E_STALE = const(19)
_E_UNWRAP_FAILED = const(20)
_E_CAPACITY = const(21)
_DK_TICKET = const(1)
_DK_USER = const(2)
_DENY_CAPACITY = const(64)
_DENY_ENTRY_LEN = const(9)
_MAC_LEN = const(16)
_NONCE_LEN = const(16)
_TIME_TOKEN_LEN = const(20)
_REKEY_LEN = const(60)
_ACK_LEN = const(28)
_CHAIN_LEN = const(8)
_WRAPPED_LEN = const(40)


def _u32(v):
    return struct.pack(">I", v)


def _bound(keys, label):
    # "LK1/" label 0x00 lock_id u32(epoch): the common MAC prefix of statements
    return b"LK1/" + label + b"\x00" + keys.lock_id + _u32(keys.epoch)


def _check(key, msg, mac):
    if not compare_digest(mac16(key, msg), mac):
        raise ProtoError(_E_BAD_MAC)


def _bytes(args, n=None):
    args = bytes(args)
    if n is not None and len(args) != n:
        raise ProtoError(_E_MALFORMED)
    return args


def verify_time_token(keys, nonce_l, args):
    # §5.1: u32 time || MAC16(K_sv, "LK1/time" 0x00 lock_id u32(epoch) nonce_L u32(time))
    args = _bytes(args, _TIME_TOKEN_LEN)
    if len(nonce_l) != _NONCE_LEN:
        raise ProtoError(_E_MALFORMED)
    t = struct.unpack(">I", args[:4])[0]
    _check(keys.sv, _bound(keys, b"time") + bytes(nonce_l) + args[:4], args[4:])
    return t


def verify_deny(keys, args):
    # §5.2 -> (version, [(kind, id, expires), ...]). Length, then MAC, then capacity
    # and kinds: nothing inside an unauthenticated list is interpreted.
    args = _bytes(args)
    if len(args) < 5 + _MAC_LEN:
        raise ProtoError(_E_MALFORMED)
    version, count = struct.unpack(">IB", args[:5])
    if len(args) != 5 + _DENY_ENTRY_LEN * count + _MAC_LEN:
        raise ProtoError(_E_MALFORMED)
    _check(keys.sv, _bound(keys, b"deny") + args[:-_MAC_LEN], args[-_MAC_LEN:])
    if count > _DENY_CAPACITY:
        raise ProtoError(_E_CAPACITY)
    entries = []
    for i in range(count):
        kind, ident, expires = struct.unpack(">BII", args[5 + _DENY_ENTRY_LEN * i:5 + _DENY_ENTRY_LEN * (i + 1)])
        if kind != _DK_TICKET and kind != _DK_USER:
            raise ProtoError(_E_MALFORMED)
        entries.append((kind, ident, expires))
    return version, entries


def open_rekey(keys, args):
    # §5.3 -> (new_epoch, new_master). Order: STALE, BAD_MAC, UNWRAP_FAILED; the
    # MAC is verified before the unwrap touches the wrapped key.
    args = _bytes(args, _REKEY_LEN)
    new_epoch = struct.unpack(">I", args[:4])[0]
    if new_epoch <= keys.epoch:
        raise ProtoError(_E_STALE)
    wrapped = args[4:4 + _WRAPPED_LEN]
    _check(keys.sv, _bound(keys, b"rekey") + args[:4] + wrapped, args[4 + _WRAPPED_LEN:])
    try:
        master = aes_key_unwrap(keys.wr, wrapped)
    except ValueError:
        raise ProtoError(_E_UNWRAP_FAILED)
    return new_epoch, master


def rekey_proof(new_keys):
    # §5.3: u32 new_epoch || MAC16(K_sv(new), "LK1/rekey-proof" 0x00 lock_id u32(new_epoch))
    return _u32(new_keys.epoch) + mac16(new_keys.sv, _bound(new_keys, b"rekey-proof"))


def verify_ack(keys, args):
    # §6.4 -> (seq, chain): u32 seq || chain(8) || MAC16(K_sv, "LK1/ack" 0x00 lock_id u32(epoch) u32(seq) chain)
    args = _bytes(args, _ACK_LEN)
    _check(keys.sv, _bound(keys, b"ack") + args[:4 + _CHAIN_LEN], args[4 + _CHAIN_LEN:])
    return struct.unpack(">I", args[:4])[0], args[4:4 + _CHAIN_LEN]


def verify_factory_reset(keys, nonce_l, args):
    # §3.4: MAC16(K_sv, "LK1/factory-reset" 0x00 lock_id u32(epoch) nonce_L)
    args = _bytes(args, _MAC_LEN)
    if len(nonce_l) != _NONCE_LEN:
        raise ProtoError(_E_MALFORMED)
    _check(keys.sv, _bound(keys, b"factory-reset") + bytes(nonce_l), args)


def provisioned_proof(keys, nonce_l):
    # §3.4: the unit's proof that it holds the key it was given, bound to nonce_L
    return mac16(keys.sv, _bound(keys, b"provisioned") + bytes(nonce_l))
