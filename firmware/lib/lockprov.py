# Provisioning and factory reset of a door unit (docs/protocol.md §3.4). Imported
# only when a PROVISION or FACTORY_RESET arrives, so it costs no heap otherwise.
#   provision_request(unit, nonce_l, msg) -> the PROVISIONED or ERROR to send
#   wipe(unit) -> status: erases the unit's state, keys last; the unit is then in
#                 factory mode and restarts shortly (DoorUnit.poll)
import struct
from lockcodes import (
    E_OK, E_MALFORMED, E_NO_SESSION, E_PROVISIONED, E_UNSUPPORTED_VERSION, E_STORAGE,
    T_PROVISIONED, PROVISION_LEN,
)
from lockwire import encode_error
from lockmsg import provisioned_proof

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_FORMAT = const(1)
# blobs erased by a factory reset, in this order; the key slots come last and the
# clock mark ("hwm") stays: time never goes back
_STATE = (b"journal", b"deny", b"guard", b"config", b"battday", b"identity")
_SLOTS = (b"keyB", b"keyA")


def provision_request(unit, nonce_l, msg):
    if nonce_l is None:
        return encode_error(E_NO_SESSION)    # ask for a HELLO first
    if unit.provisioned:
        return encode_error(E_PROVISIONED)
    if len(msg) != PROVISION_LEN:
        return encode_error(E_MALFORMED)
    if msg[1] != _FORMAT:
        return encode_error(E_UNSUPPORTED_VERSION, (_FORMAT << 8) | _FORMAT)
    lock_id = bytes(msg[2:10])
    epoch = struct.unpack_from(">I", msg, 10)[0]
    if lock_id == b"\x00" * 8 or epoch == 0:
        return encode_error(E_MALFORMED)
    try:
        status = unit.provision(lock_id, epoch, bytes(msg[14:46]), struct.unpack_from(">I", msg, 46)[0])
    except OSError:
        status = E_STORAGE
    if status != E_OK:
        return encode_error(status)
    unit.hw.production()   # production mode at once, not only from the next boot
    return bytes((T_PROVISIONED,)) + lock_id + struct.pack(">I", epoch) + \
        provisioned_proof(unit.keystore.keys, nonce_l)


def wipe(unit):
    kv = unit.kv
    store = unit.journal.store
    try:
        store.clear()  # erased on the flash too: no record outlives the reset
        for name in _STATE + _SLOTS:
            kv.delete(name)
    except OSError:
        return E_STORAGE
    unit.keystore.keys = None   # factory mode from now on, also before the restart
    unit.restart_due = unit.ms() + 500
    return E_OK
