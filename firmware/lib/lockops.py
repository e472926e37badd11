# The operations of an established session (docs/protocol.md §4.6), apart from
# the state machine (locksession.py) so each module stays small to compile on
# the device. run_op() is called only after the ticket and the message MAC were
# verified; everything with side effects goes through the lock context `ctx`.
import struct
from lockcodes import (
    OP_NOP, OP_UNLOCK, OP_LOCK, OP_STATUS, OP_JOURNAL_READ, OP_JOURNAL_ACK, OP_TIME_SET,
    OP_DENY_UPDATE, OP_REKEY, OP_CONFIG, OP_FACTORY_RESET, R_UNLOCK, R_LOCK, R_JOURNAL, R_ADMIN,
    E_OK, E_MALFORMED, E_UNKNOWN_OP, E_NO_RIGHT, E_TIME_UNCERTAIN, E_STALE,
    CHUNK_MAX, MAX_UNCERTAIN_LIFETIME,
)
from lockwire import ProtoError
from lockticket import lifetime
# lockmsg (server statements) is imported where a statement arrives: an unlock
# never needs it, so it costs no heap on the common path
from lockrecord import export_chunk


def _u32(v):
    return struct.pack(">I", v)


def _need(ticket, right):
    if not ticket.rights & right:
        raise ProtoError(E_NO_RIGHT)


def _short_if_uncertain(ctx, ticket):
    # §2.5: while uncertain only short tickets may UNLOCK or read the journal
    if ctx.time_uncertain() and lifetime(ticket) > MAX_UNCERTAIN_LIFETIME:
        raise ProtoError(E_TIME_UNCERTAIN)


def _msg():
    import lockmsg
    return lockmsg


def run_op(ctx, ticket, nonce_l, op, args):
    # -> (status, payload, end_session). A ProtoError carries the status.
    # Check order: unknown op, args length, right, time-uncertain rule, then
    # the op's own checks (server MAC before anything it says is used).
    n = len(args)
    if op == OP_NOP or op == OP_STATUS:
        if n:
            raise ProtoError(E_MALFORMED)
        return E_OK, (ctx.state_block() if op == OP_STATUS else b""), False
    if op == OP_UNLOCK or op == OP_LOCK:
        if n:
            raise ProtoError(E_MALFORMED)
        if op == OP_UNLOCK:
            _need(ticket, R_UNLOCK)
            _short_if_uncertain(ctx, ticket)
        else:
            _need(ticket, R_LOCK)
        status, bolt = ctx.actuate(op, ticket)
        return status, (bytes((bolt,)) if status == E_OK else b""), False
    if op == OP_JOURNAL_READ:
        if n != 5:
            raise ProtoError(E_MALFORMED)
        _need(ticket, R_JOURNAL)
        _short_if_uncertain(ctx, ticket)
        from_seq, count = struct.unpack(">IB", args)
        if count < 1 or count > CHUNK_MAX:
            raise ProtoError(E_MALFORMED)
        first, records, head, prev = ctx.journal_read(from_seq, count)
        if len(records) > count:
            raise ValueError("journal_read")
        return E_OK, export_chunk(ctx.keys, first, records, head, prev), False
    if op == OP_JOURNAL_ACK:
        seq, chain = _msg().verify_ack(ctx.keys, args)
        status, acked = ctx.journal_ack(seq, chain)
        return status, _u32(acked), False
    if op == OP_TIME_SET:
        t = _msg().verify_time_token(ctx.keys, nonce_l, args)
        status = ctx.set_time(t)
        return (E_OK if status is None else status), _u32(ctx.now()), False
    if op == OP_DENY_UPDATE:
        version, entries = _msg().verify_deny(ctx.keys, args)
        if version <= ctx.deny_version():
            raise ProtoError(E_STALE)
        status = ctx.set_deny(version, entries)
        return status, _u32(ctx.deny_version()), False
    if op == OP_REKEY:
        new_epoch, master = _msg().open_rekey(ctx.keys, args)
        status = ctx.rekey(new_epoch, master)
        master = None
        if status != E_OK:
            return status, b"", False
        keys = ctx.keys
        if keys.epoch != new_epoch:
            raise ValueError("rekey")
        # the session key belongs to the old epoch: the session ends
        return E_OK, _msg().rekey_proof(keys), True
    if op == OP_CONFIG:
        if n != 1 and n != 5:
            raise ProtoError(E_MALFORMED)
        _need(ticket, R_ADMIN)
        if ctx.time_uncertain():
            raise ProtoError(E_TIME_UNCERTAIN)
        key = args[0]
        value = struct.unpack(">I", args[1:])[0] if n == 5 else None
        status, value = ctx.config(key, value, ticket)
        return status, bytes((key,)) + _u32(value if status == E_OK else 0), False
    if op == OP_FACTORY_RESET:
        _need(ticket, R_ADMIN)
        _msg().verify_factory_reset(ctx.keys, nonce_l, args)
        status = ctx.factory_reset()
        # on OK the keys are gone: the RESULT is the last message of the session
        return status, b"", status == E_OK
    return E_UNKNOWN_OP, b"", False
