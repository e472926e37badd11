# The lock's half of a session (docs/protocol.md §4): HELLO, AUTH with the first
# op, then OPs with counters and MACs. A pure state machine: whole messages in,
# whole responses out; everything else goes through the lock context `ctx`
# (identity, keys, clock, deny list, rate limiter, mechanism, config, journal).
from lockcrypto import sha256, ticket_key, session_key, fmac, compare_digest
from lockwire import ProtoError, decode_auth, decode_op, encode_result_body, encode_error, encode_hello
from lockticket import parse_ticket, check_validity
from lockops import run_op

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_T_AUTH = const(2)
_T_OP = const(4)
_DIR_PHONE = const(0x50)
_DIR_LOCK = const(0x4C)
_PROTO_MIN = const(1)
_PROTO_MAX = const(1)
_MAX_MESSAGE = const(1024)
_MAC_LEN = const(16)
_NONCE_LEN = const(16)
_E_OK = const(0)
_E_MALFORMED = const(1)
_E_UNSUPPORTED_VERSION = const(2)
_E_UNKNOWN_TYPE = const(3)
_E_TOO_LARGE = const(5)
_E_WRONG_LOCK = const(7)
_E_WRONG_EPOCH = const(8)
_E_BAD_MAC = const(9)
_E_LOCKED_OUT = const(15)
_E_BAD_COUNTER = const(16)
_E_NO_SESSION = const(17)
_E_FACTORY_MODE = const(27)

_IDLE = const(0)     # no connection, or its protocol state has ended
_AWAIT = const(1)    # HELLO sent, waiting for AUTH
_SESSION = const(2)  # AUTH accepted, OPs welcome

# ERROR INTERNAL, prebuilt so the last-resort path allocates nothing
_ERR_INTERNAL = b"\x05\x1d\x00\x00\x00\x00"


class LockSession:
    def __init__(self, ctx):
        self.ctx = ctx
        self.established = False
        self.closed = False
        self._stage = _IDLE
        self._nonce = None    # nonce_L of this connection
        self._hh = None       # SHA256 of this connection's exact HELLO
        self._ks = None       # K_S
        self._ticket = None   # the verified ticket of the session
        self._ctr = 0         # next expected OP counter

    # ---- connection life cycle ----

    def hello(self):
        # A new connection: fresh nonce, no session; returns the HELLO to send.
        self._forget()
        ctx = self.ctx
        nonce = bytes(ctx.random(_NONCE_LEN))
        if len(nonce) != _NONCE_LEN:
            raise ValueError("nonce")
        keys = ctx.keys
        msg = encode_hello(ctx.lock_id, keys.epoch if keys is not None else 0, nonce, ctx.fw,
                           ctx.state_block())
        self._nonce = nonce
        self._hh = sha256(msg)
        self._stage = _AWAIT
        self.closed = False
        return msg

    def take_nonce(self):
        # the serial link's PROVISION (§3.4): nonce_L of this connection's HELLO if
        # no AUTH came yet, else None; the connection's protocol state ends either way
        nonce = self._nonce if self._stage == _AWAIT else None
        self.close()
        return nonce

    def close(self):
        # Ends the connection's protocol state (timeouts, disconnects).
        self._forget()
        self.closed = True

    def _forget(self):
        self._stage = _IDLE
        self.established = False
        self._ks = None
        self._ticket = None
        self._nonce = None
        self._hh = None
        self._ctr = 0

    def _error(self, code, detail=0):
        # Every ERROR ends the connection's protocol state (§4.2, §4.3).
        self.close()
        return encode_error(code, detail)

    def _result(self, ctr, op, status, payload=b""):
        body = encode_result_body(ctr, op, status, payload if status == _E_OK else b"")
        return body + fmac(self._ks, _DIR_LOCK, ctr, body)

    # ---- messages ----

    def handle(self, msg):
        # One phone message in, one response out (RESULT or ERROR); never raises.
        try:
            msg = bytes(msg)
            if not msg:
                return self._error(_E_MALFORMED)
            t = msg[0]
            if t == _T_AUTH:
                return self._auth(msg)   # check 1 (lockout) comes before any length check
            if t == _T_OP:
                return self._op(msg)
            if len(msg) > _MAX_MESSAGE:
                return self._error(_E_TOO_LARGE)
            # unknown types, and HELLO, RESULT and ERROR, which a lock never receives
            return self._error(_E_UNKNOWN_TYPE)
        except Exception:
            try:
                self.close()
            except Exception:
                pass
            return _ERR_INTERNAL

    def _auth(self, msg):
        ctx = self.ctx
        if self._stage != _AWAIT:
            # one AUTH per HELLO: no second session on the same nonce_L
            return self._error(_E_NO_SESSION)
        keys = ctx.keys
        if keys is None:
            return self._error(_E_FACTORY_MODE)
        left = ctx.lockout_remaining()                                     # 1
        if left > 0:
            return self._error(_E_LOCKED_OUT, left)
        ticket = None
        try:
            version, raw, nonce_p, op, args, mac = decode_auth(msg)        # 2
            if not _PROTO_MIN <= version <= _PROTO_MAX:                      # 3
                raise ProtoError(_E_UNSUPPORTED_VERSION, (_PROTO_MIN << 8) | _PROTO_MAX)
            ticket = parse_ticket(raw)                                     # 4
            if ticket.lock_id != ctx.lock_id:                              # 5
                raise ProtoError(_E_WRONG_LOCK)
            if ticket.epoch != keys.epoch:                                 # 6
                raise ProtoError(_E_WRONG_EPOCH, keys.epoch)
            ks = session_key(ticket_key(keys.tk, raw), self._nonce, nonce_p)
            if not compare_digest(fmac(ks, _DIR_PHONE, 0, self._hh + msg[:-_MAC_LEN]), mac):
                raise ProtoError(_E_BAD_MAC)                                # 7
        except ProtoError as e:
            ctx.auth_failed(e.code, ticket)
            return self._error(e.code, e.detail)
        self._ks = ks
        # 8: the MAC holds, so issued_at is the server's word (§2.5)
        if ctx.time_uncertain():
            ctx.raise_clock(ticket.issued_at)
        code = check_validity(ticket, ctx.now(), ctx.is_denied)
        if code != _E_OK:
            ctx.auth_failed(code, ticket)
            resp = self._result(0, op, code)
            self.close()
            return resp
        ctx.auth_ok(ticket)                                                # 9
        self._ticket = ticket
        self._stage = _SESSION
        self.established = True
        self._ctr = 1
        return self._respond(0, op, args)

    def _op(self, msg):
        if self._stage != _SESSION:
            return self._error(_E_NO_SESSION)
        try:
            ctr, op, args, mac = decode_op(msg)
        except ProtoError as e:
            return self._error(e.code, e.detail)
        if ctr != self._ctr:
            return self._error(_E_BAD_COUNTER)
        if not compare_digest(fmac(self._ks, _DIR_PHONE, ctr, msg[:-_MAC_LEN]), mac):
            return self._error(_E_BAD_MAC)
        self._ctr = ctr + 1
        # the ticket must still be valid: the clock may have moved (TIME_SET) or
        # the deny list changed since AUTH
        ctx = self.ctx
        code = check_validity(self._ticket, ctx.now(), ctx.is_denied)
        if code != _E_OK:
            resp = self._result(ctr, op, code)
            self.close()
            return resp
        return self._respond(ctr, op, args)

    def _respond(self, ctr, op, args):
        end = False
        try:
            status, payload, end = run_op(self.ctx, self._ticket, self._nonce, op, args)
        except ProtoError as e:
            status, payload = e.code, b""
        resp = self._result(ctr, op, status, payload)
        if end:
            self.close()
        return resp
