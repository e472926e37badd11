# The operations of an established session (docs/protocol.md §4.6), apart from
# the state machine (locksession.py) so each module stays small to compile on
# the device. run_op() is called only after the ticket and the message MAC were
# verified; everything with side effects goes through the lock context `ctx`.
import struct
from lockwire import ProtoError
from lockticket import lifetime
# lockmsg (server statements) is imported where a statement arrives: an unlock
# never needs it, so it costs no heap on the common path
from lockrecord import export_chunk

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_OP_NOP = const(0)
_OP_UNLOCK = const(1)
_OP_LOCK = const(2)
_OP_STATUS = const(3)
_OP_JOURNAL_READ = const(0x10)
_OP_JOURNAL_ACK = const(0x11)
_OP_TIME_SET = const(0x12)
_OP_DENY_UPDATE = const(0x13)
_OP_REKEY = const(0x14)
_OP_CONFIG = const(0x15)
_OP_FACTORY_RESET = const(0x16)
_R_UNLOCK = const(1)
_R_LOCK = const(2)
_R_JOURNAL = const(4)
_R_ADMIN = const(8)
_E_OK = const(0)
_E_MALFORMED = const(1)
_E_UNKNOWN_OP = const(4)
_E_NO_RIGHT = const(14)
_E_TIME_UNCERTAIN = const(18)
_E_STALE = const(19)
_CHUNK_MAX = const(16)
_MAX_UNCERTAIN_LIFETIME = const(43200)


def _u32(v):
    return struct.pack(">I", v)


def _need(ticket, right):
    if not ticket.rights & right:
        raise ProtoError(_E_NO_RIGHT)


def _short_if_uncertain(ctx, ticket):
    # §2.5: while uncertain only short tickets may UNLOCK or read the journal
    if ctx.time_uncertain() and lifetime(ticket) > _MAX_UNCERTAIN_LIFETIME:
        raise ProtoError(_E_TIME_UNCERTAIN)


def _msg():
    import lockmsg
    return lockmsg


def run_op(ctx, ticket, nonce_l, op, args):
    # -> (status, payload, end_session). A ProtoError carries the status.
    # Check order: unknown op, args length, right, time-uncertain rule, then
    # the op's own checks (server MAC before anything it says is used).
    n = len(args)
    if op == _OP_NOP or op == _OP_STATUS:
        if n:
            raise ProtoError(_E_MALFORMED)
        return _E_OK, (ctx.state_block() if op == _OP_STATUS else b""), False
    if op == _OP_UNLOCK or op == _OP_LOCK:
        if n:
            raise ProtoError(_E_MALFORMED)
        if op == _OP_UNLOCK:
            _need(ticket, _R_UNLOCK)
            _short_if_uncertain(ctx, ticket)
        else:
            _need(ticket, _R_LOCK)
        status, bolt = ctx.actuate(op, ticket)
        return status, (bytes((bolt,)) if status == _E_OK else b""), False
    if op == _OP_JOURNAL_READ:
        if n != 5:
            raise ProtoError(_E_MALFORMED)
        _need(ticket, _R_JOURNAL)
        _short_if_uncertain(ctx, ticket)
        from_seq, count = struct.unpack(">IB", args)
        if count < 1 or count > _CHUNK_MAX:
            raise ProtoError(_E_MALFORMED)
        first, records, head, prev = ctx.journal_read(from_seq, count)
        if len(records) > count:
            raise ValueError("journal_read")
        return _E_OK, export_chunk(ctx.keys, first, records, head, prev), False
    if op == _OP_JOURNAL_ACK:
        seq, chain = _msg().verify_ack(ctx.keys, args)
        status, acked = ctx.journal_ack(seq, chain)
        return status, _u32(acked), False
    if op == _OP_TIME_SET:
        t = _msg().verify_time_token(ctx.keys, nonce_l, args)
        status = ctx.set_time(t)
        return (_E_OK if status is None else status), _u32(ctx.now()), False
    if op == _OP_DENY_UPDATE:
        version, entries = _msg().verify_deny(ctx.keys, args)
        if version <= ctx.deny_version():
            raise ProtoError(_E_STALE)
        status = ctx.set_deny(version, entries)
        return status, _u32(ctx.deny_version()), False
    if op == _OP_REKEY:
        new_epoch, master = _msg().open_rekey(ctx.keys, args)
        status = ctx.rekey(new_epoch, master)
        master = None
        if status != _E_OK:
            return status, b"", False
        keys = ctx.keys
        if keys.epoch != new_epoch:
            raise ValueError("rekey")
        # the session key belongs to the old epoch: the session ends
        return _E_OK, _msg().rekey_proof(keys), True
    if op == _OP_CONFIG:
        if n != 1 and n != 5:
            raise ProtoError(_E_MALFORMED)
        _need(ticket, _R_ADMIN)
        if ctx.time_uncertain():
            raise ProtoError(_E_TIME_UNCERTAIN)
        key = args[0]
        value = struct.unpack(">I", args[1:])[0] if n == 5 else None
        status, value = ctx.config(key, value, ticket)
        return status, bytes((key,)) + _u32(value if status == _E_OK else 0), False
    if op == _OP_FACTORY_RESET:
        _need(ticket, _R_ADMIN)
        _msg().verify_factory_reset(ctx.keys, nonce_l, args)
        status = ctx.factory_reset()
        # on OK the keys are gone: the RESULT is the last message of the session
        return status, b"", status == _E_OK
    return _E_UNKNOWN_OP, b"", False
