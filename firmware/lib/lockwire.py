# Message layouts of the lock protocol (docs/protocol.md §4).
# Decoders take any bytes-like input and raise only ProtoError.
import struct

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_T_HELLO = const(1)
_T_AUTH = const(2)
_T_RESULT = const(3)
_T_OP = const(4)
_T_ERROR = const(5)
_PROTO_MIN = const(1)
_PROTO_MAX = const(1)
_E_OK = const(0)
_E_MALFORMED = const(1)
_E_UNKNOWN_TYPE = const(3)
_E_TOO_LARGE = const(5)
_MAX_MESSAGE = const(1024)
_TICKET_LEN = const(41)
_STATE_LEN = const(21)
_HELLO_LEN = const(55)
_HELLO_MAX = const(128)
_NONCE_LEN = const(16)
_MAC_LEN = const(16)
_AUTH_MIN = const(76)
_OP_MIN = const(22)
_RESULT_MIN = const(23)
_ERROR_LEN = const(6)


class ProtoError(Exception):
    # A protocol failure with a code of §4.7 and a u32 detail.
    def __init__(self, code, detail=0):
        super().__init__(code, detail)
        self.code = code
        self.detail = detail


def _bytes(msg):
    # Any bytes-like object to bytes; anything else is MALFORMED.
    if isinstance(msg, bytes):
        return msg
    try:
        return bytes(memoryview(msg))
    except Exception:
        raise ProtoError(_E_MALFORMED)


def check_type(msg, want, minimum, maximum=_MAX_MESSAGE):
    # Type and length checks shared by every decoder; returns msg as bytes.
    # Order: empty (MALFORMED), over 1024 bytes (TOO_LARGE, whatever the type),
    # unknown type (UNKNOWN_TYPE), another type or a bad length (MALFORMED).
    msg = _bytes(msg)
    if not msg:
        raise ProtoError(_E_MALFORMED)
    if len(msg) > _MAX_MESSAGE:
        raise ProtoError(_E_TOO_LARGE)
    t = msg[0]
    if t < _T_HELLO or t > _T_ERROR:
        raise ProtoError(_E_UNKNOWN_TYPE)
    if t != want or len(msg) < minimum or len(msg) > maximum:
        raise ProtoError(_E_MALFORMED)
    return msg


def _u8(v):
    if not 0 <= v <= 0xFF:
        raise ValueError("u8")
    return v


def _fixed(b, n):
    if len(b) != n:
        raise ValueError("length")
    return bytes(b)


# ---- state block (§4.1) ----

def encode_state(lock_time, flags, bolt, battery_pct, battery_mv, journal_head, journal_acked,
                 deny_version):
    return struct.pack(">IBBBHIII", lock_time, flags, bolt, battery_pct, battery_mv,
                       journal_head, journal_acked, deny_version)


def decode_state(b):
    # -> (lock_time, flags, bolt, battery_pct, battery_mv, journal_head, journal_acked, deny_version)
    b = _bytes(b)
    if len(b) != _STATE_LEN:
        raise ProtoError(_E_MALFORMED)
    return struct.unpack(">IBBBHIII", b)


# ---- HELLO (§4.1) ----

def encode_hello(lock_id, epoch, nonce, fw, state):
    return (struct.pack(">BBB", _T_HELLO, _PROTO_MIN, _PROTO_MAX) + _fixed(lock_id, 8)
            + struct.pack(">I", epoch) + _fixed(nonce, _NONCE_LEN)
            + bytes((_u8(fw[0]), _u8(fw[1]), _u8(fw[2]))) + _fixed(state, _STATE_LEN))


def decode_hello(msg):
    # -> (proto_min, proto_max, lock_id, epoch, nonce_l, fw, state); extra bytes ignored.
    msg = check_type(msg, _T_HELLO, _HELLO_LEN, _HELLO_MAX)
    pmin, pmax = msg[1], msg[2]
    if pmin > pmax:
        raise ProtoError(_E_MALFORMED)
    epoch = struct.unpack(">I", msg[11:15])[0]
    return (pmin, pmax, msg[3:11], epoch, msg[15:31], (msg[31], msg[32], msg[33]), msg[34:55])


# ---- AUTH (§4.2) ----

def encode_auth_body(version, ticket, nonce_p, op, args=b""):
    # AUTH without its mac (the mac covers SHA256(HELLO) || this).
    return (struct.pack(">BB", _T_AUTH, _u8(version)) + _fixed(ticket, _TICKET_LEN)
            + _fixed(nonce_p, _NONCE_LEN) + bytes((_u8(op),)) + bytes(args))


def decode_auth(msg):
    # -> (version, ticket, nonce_p, op, args, mac)
    msg = check_type(msg, _T_AUTH, _AUTH_MIN)
    return (msg[1], msg[2:43], msg[43:59], msg[59], msg[60:-_MAC_LEN], msg[-_MAC_LEN:])


# ---- OP (§4.3) ----

def encode_op_body(ctr, op, args=b""):
    return struct.pack(">BIB", _T_OP, ctr, _u8(op)) + bytes(args)


def decode_op(msg):
    # -> (ctr, op, args, mac)
    msg = check_type(msg, _T_OP, _OP_MIN)
    return (struct.unpack(">I", msg[1:5])[0], msg[5], msg[6:-_MAC_LEN], msg[-_MAC_LEN:])


# ---- RESULT (§4.4) ----

def encode_result_body(ctr, op, status, payload=b""):
    # RESULT without its mac.
    if status != _E_OK and payload:
        raise ValueError("payload on failure")
    return struct.pack(">BIBB", _T_RESULT, ctr, _u8(op), _u8(status)) + bytes(payload)


def decode_result(msg):
    # -> (ctr, op, status, payload, mac)
    msg = check_type(msg, _T_RESULT, _RESULT_MIN)
    status = msg[6]
    payload = msg[7:-_MAC_LEN]
    if status != _E_OK and payload:
        raise ProtoError(_E_MALFORMED)
    return (struct.unpack(">I", msg[1:5])[0], msg[5], status, payload, msg[-_MAC_LEN:])


# ---- ERROR (§4.5) ----

def encode_error(code, detail=0):
    return struct.pack(">BBI", _T_ERROR, _u8(code), detail)


def decode_error(msg):
    # -> (code, detail)
    msg = check_type(msg, _T_ERROR, _ERROR_LEN, _ERROR_LEN)
    return (msg[1], struct.unpack(">I", msg[2:6])[0])
