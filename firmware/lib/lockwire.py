# Message layouts of the lock protocol (docs/protocol.md §4).
# Decoders take any bytes-like input and raise only ProtoError.
import struct
from lockcodes import (
    T_HELLO, T_AUTH, T_RESULT, T_OP, T_ERROR, PROTO_MIN, PROTO_MAX,
    E_OK, E_MALFORMED, E_UNKNOWN_TYPE, E_TOO_LARGE,
    MAX_MESSAGE, TICKET_LEN, STATE_LEN, HELLO_LEN, HELLO_MAX, NONCE_LEN, MAC_LEN,
    AUTH_MIN, OP_MIN, RESULT_MIN, ERROR_LEN,
)


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
        raise ProtoError(E_MALFORMED)


def check_type(msg, want, minimum, maximum=MAX_MESSAGE):
    # Type and length checks shared by every decoder; returns msg as bytes.
    # Order: empty (MALFORMED), over 1024 bytes (TOO_LARGE, whatever the type),
    # unknown type (UNKNOWN_TYPE), another type or a bad length (MALFORMED).
    msg = _bytes(msg)
    if not msg:
        raise ProtoError(E_MALFORMED)
    if len(msg) > MAX_MESSAGE:
        raise ProtoError(E_TOO_LARGE)
    t = msg[0]
    if t < T_HELLO or t > T_ERROR:
        raise ProtoError(E_UNKNOWN_TYPE)
    if t != want or len(msg) < minimum or len(msg) > maximum:
        raise ProtoError(E_MALFORMED)
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
    if len(b) != STATE_LEN:
        raise ProtoError(E_MALFORMED)
    return struct.unpack(">IBBBHIII", b)


# ---- HELLO (§4.1) ----

def encode_hello(lock_id, epoch, nonce, fw, state):
    return (struct.pack(">BBB", T_HELLO, PROTO_MIN, PROTO_MAX) + _fixed(lock_id, 8)
            + struct.pack(">I", epoch) + _fixed(nonce, NONCE_LEN)
            + bytes((_u8(fw[0]), _u8(fw[1]), _u8(fw[2]))) + _fixed(state, STATE_LEN))


def decode_hello(msg):
    # -> (proto_min, proto_max, lock_id, epoch, nonce_l, fw, state); extra bytes ignored.
    msg = check_type(msg, T_HELLO, HELLO_LEN, HELLO_MAX)
    pmin, pmax = msg[1], msg[2]
    if pmin > pmax:
        raise ProtoError(E_MALFORMED)
    epoch = struct.unpack(">I", msg[11:15])[0]
    return (pmin, pmax, msg[3:11], epoch, msg[15:31], (msg[31], msg[32], msg[33]), msg[34:55])


# ---- AUTH (§4.2) ----

def encode_auth_body(version, ticket, nonce_p, op, args=b""):
    # AUTH without its mac (the mac covers SHA256(HELLO) || this).
    return (struct.pack(">BB", T_AUTH, _u8(version)) + _fixed(ticket, TICKET_LEN)
            + _fixed(nonce_p, NONCE_LEN) + bytes((_u8(op),)) + bytes(args))


def decode_auth(msg):
    # -> (version, ticket, nonce_p, op, args, mac)
    msg = check_type(msg, T_AUTH, AUTH_MIN)
    return (msg[1], msg[2:43], msg[43:59], msg[59], msg[60:-MAC_LEN], msg[-MAC_LEN:])


# ---- OP (§4.3) ----

def encode_op_body(ctr, op, args=b""):
    return struct.pack(">BIB", T_OP, ctr, _u8(op)) + bytes(args)


def decode_op(msg):
    # -> (ctr, op, args, mac)
    msg = check_type(msg, T_OP, OP_MIN)
    return (struct.unpack(">I", msg[1:5])[0], msg[5], msg[6:-MAC_LEN], msg[-MAC_LEN:])


# ---- RESULT (§4.4) ----

def encode_result_body(ctr, op, status, payload=b""):
    # RESULT without its mac.
    if status != E_OK and payload:
        raise ValueError("payload on failure")
    return struct.pack(">BIBB", T_RESULT, ctr, _u8(op), _u8(status)) + bytes(payload)


def decode_result(msg):
    # -> (ctr, op, status, payload, mac)
    msg = check_type(msg, T_RESULT, RESULT_MIN)
    status = msg[6]
    payload = msg[7:-MAC_LEN]
    if status != E_OK and payload:
        raise ProtoError(E_MALFORMED)
    return (struct.unpack(">I", msg[1:5])[0], msg[5], status, payload, msg[-MAC_LEN:])


# ---- ERROR (§4.5) ----

def encode_error(code, detail=0):
    return struct.pack(">BBI", T_ERROR, _u8(code), detail)


def decode_error(msg):
    # -> (code, detail)
    msg = check_type(msg, T_ERROR, ERROR_LEN, ERROR_LEN)
    return (msg[1], struct.unpack(">I", msg[2:6])[0])
