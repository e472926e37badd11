"""Provisioning and factory reset (protocol §3.4): what the key server and the serial tool compute.

A PROVISION message carries the lock's master key in the clear and is accepted only
over the maintenance cable by a unit in factory mode; the PROVISIONED answer proves
the unit holds that key, bound to the nonce of the HELLO on the same connection.
"""

from __future__ import annotations

import struct

from .codes import Err, MsgType, KEY_LEN, MAC_LEN, NONCE_LEN
from .crypto import LockKeys, compare_digest, mac16, u32
from .errors import ProtocolError

__all__ = ["PROVISION_LEN", "PROVISIONED_LEN", "PROVISION_FORMAT", "provision_message", "provisioned_proof",
           "read_provisioned", "factory_reset_statement"]

PROVISION_FORMAT = 1
PROVISION_LEN = 50
PROVISIONED_LEN = 29


def _head(keys: LockKeys, label: bytes) -> bytes:
    return b"LK1/" + label + b"\x00" + keys.lock_id + u32(keys.epoch)


def provision_message(lock_id: bytes, epoch: int, master: bytes, time: int) -> bytes:
    """The PROVISION message (50 bytes). ValueError for an identity the lock would refuse."""
    if len(lock_id) != 8 or lock_id == bytes(8):
        raise ValueError("lock_id is 8 bytes, not all zeros")
    if not 1 <= epoch <= 0xFFFFFFFF:
        raise ValueError("epoch is 1..2**32-1")
    if len(master) != KEY_LEN:
        raise ValueError("the master key is 32 bytes")
    if not 0 <= time <= 0xFFFFFFFF:
        raise ValueError("time is a u32")
    return bytes([MsgType.PROVISION, PROVISION_FORMAT]) + bytes(lock_id) + u32(epoch) + bytes(master) + u32(time)


def provisioned_proof(keys: LockKeys, nonce_l: bytes) -> bytes:
    """``MAC16(K_sv, "LK1/provisioned" 0x00 lock_id u32(epoch) nonce_L)``."""
    if len(nonce_l) != NONCE_LEN:
        raise ValueError("nonce_L is 16 bytes")
    return mac16(keys.sv, _head(keys, b"provisioned") + bytes(nonce_l))


def read_provisioned(keys: LockKeys, nonce_l: bytes, msg: bytes) -> None:
    """Check the unit's answer to PROVISION; raise ProtocolError unless it proves ``keys``.

    An ERROR from the unit raises ProtocolError with the unit's code (e.g. PROVISIONED
    for a unit that is not in factory mode).
    """
    msg = bytes(msg)
    if msg[:1] == bytes([MsgType.ERROR]) and len(msg) == 6:
        raise ProtocolError(Err(msg[1]) if msg[1] in Err._value2member_map_ else Err.MALFORMED,
                            struct.unpack(">I", msg[2:6])[0])
    if len(msg) != PROVISIONED_LEN or msg[0] != MsgType.PROVISIONED:
        raise ProtocolError(Err.MALFORMED)
    if msg[1:9] != keys.lock_id or struct.unpack(">I", msg[9:13])[0] != keys.epoch:
        raise ProtocolError(Err.WRONG_LOCK)
    if not compare_digest(msg[13:13 + MAC_LEN], provisioned_proof(keys, nonce_l)):
        raise ProtocolError(Err.BAD_MAC)


def factory_reset_statement(keys: LockKeys, nonce_l: bytes) -> bytes:
    """FACTORY_RESET args (16 bytes): the server's consent, bound to one connection's HELLO."""
    if len(nonce_l) != NONCE_LEN:
        raise ValueError("nonce_L is 16 bytes")
    return mac16(keys.sv, _head(keys, b"factory-reset") + bytes(nonce_l))
