# Provisioning and factory reset of a door unit (docs/protocol.md §3.4). Imported
# only when a PROVISION or FACTORY_RESET arrives, so it costs no heap otherwise.
#   provision_request(unit, nonce_l, msg) -> the PROVISIONED or ERROR to send
#   wipe(unit) -> status: erases the unit's state, keys last; the unit is then in
#                 factory mode and restarts shortly (DoorUnit.poll)
import struct
from lockwire import encode_error
from lockmsg import provisioned_proof

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_E_OK = const(0)
_E_MALFORMED = const(1)
_E_NO_SESSION = const(17)
_E_PROVISIONED = const(30)
_E_UNSUPPORTED_VERSION = const(2)
_E_STORAGE = const(25)
_T_PROVISIONED = const(7)
_PROVISION_LEN = const(50)

_FORMAT = const(1)
# blobs erased by a factory reset, in this order; the key slots come last and the
# clock mark ("hwm") stays: time never goes back
_STATE = (b"journal", b"deny", b"guard", b"config", b"battday", b"identity")
_SLOTS = (b"keyB", b"keyA")


def provision_request(unit, nonce_l, msg):
    if nonce_l is None:
        return encode_error(_E_NO_SESSION)    # ask for a HELLO first
    if unit.provisioned:
        return encode_error(_E_PROVISIONED)
    if len(msg) != _PROVISION_LEN:
        return encode_error(_E_MALFORMED)
    if msg[1] != _FORMAT:
        return encode_error(_E_UNSUPPORTED_VERSION, (_FORMAT << 8) | _FORMAT)
    lock_id = bytes(msg[2:10])
    epoch = struct.unpack_from(">I", msg, 10)[0]
    if lock_id == b"\x00" * 8 or epoch == 0:
        return encode_error(_E_MALFORMED)
    try:
        status = unit.provision(lock_id, epoch, bytes(msg[14:46]), struct.unpack_from(">I", msg, 46)[0])
    except OSError:
        status = _E_STORAGE
    if status != _E_OK:
        return encode_error(status)
    unit.hw.production()   # production mode at once, not only from the next boot
    return bytes((_T_PROVISIONED,)) + lock_id + struct.pack(">I", epoch) + \
        provisioned_proof(unit.keystore.keys, nonce_l)


def wipe(unit):
    kv = unit.kv
    store = unit.journal.store
    try:
        store.clear()  # erased on the flash too: no record outlives the reset
        for name in _STATE + _SLOTS:
            kv.delete(name)
    except OSError:
        return _E_STORAGE
    unit.keystore.keys = None   # factory mode from now on, also before the restart
    unit.restart_due = unit.ms() + 500
    return _E_OK
