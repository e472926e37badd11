# Journal records (docs/protocol.md §6): layout, chain MAC and the encrypted export chunk.
import struct
from lockcrypto import mac8, mac16, aes_ctr
from lockwire import ProtoError

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_RECORD_LEN = const(32)
_RECORD_BODY_LEN = const(24)
_CHAIN_LEN = const(8)
_CHUNK_MAX = const(16)
_E_MALFORMED = const(1)

_BODY = ">IIBBHIII"  # seq, time, event, flags, arg16, user_id, ticket_id, arg


def pack_body(seq, time, event, flags, arg16, user_id, ticket_id, arg):
    # §6.1 bytes 0..23 (everything but the chain)
    return struct.pack(_BODY, seq, time, event, flags, arg16, user_id, ticket_id, arg)


def unpack(record):
    # -> (seq, time, event, flags, arg16, user_id, ticket_id, arg, chain)
    record = bytes(record)
    if len(record) != _RECORD_LEN:
        raise ProtoError(_E_MALFORMED)
    return struct.unpack(_BODY, record[:_RECORD_BODY_LEN]) + (record[_RECORD_BODY_LEN:],)


def chain_genesis(jm, lock_id):
    # chain_0 = MAC8(K_jm, "LK1/chain" || 0x00 || lock_id)
    return mac8(jm, b"LK1/chain\x00" + bytes(lock_id))


def chain_next(jm, prev_chain, body24):
    # chain_n = MAC8(K_jm(e_n), chain_(n-1) || record_n[0:24])
    if len(prev_chain) != _CHAIN_LEN or len(body24) != _RECORD_BODY_LEN:
        raise ValueError("chain input length")
    return mac8(jm, bytes(prev_chain) + bytes(body24))


def seal(jm, prev_chain, body24):
    # the full 32-byte record
    return bytes(body24) + chain_next(jm, prev_chain, body24)


def export_chunk(keys, first_seq, records, head_seq, prev_chain):
    # §6.3: header(21) || ciphertext(32 * count) || emac(16), under keys of the current epoch.
    count = len(records)
    if count > _CHUNK_MAX or len(prev_chain) != _CHAIN_LEN:
        raise ValueError("chunk")
    head = struct.pack(">IIBI", keys.epoch, first_seq, count, head_seq) + bytes(prev_chain)
    parts = [head]
    for i in range(count):
        rec = records[i]
        seq = first_seq + i
        if len(rec) != _RECORD_LEN or struct.unpack(">I", rec[:4])[0] != seq:
            raise ValueError("record sequence")
        parts.append(aes_ctr(keys.je, keys.lock_id + struct.pack(">I", seq), rec))
    body = b"".join(parts)
    return body + mac16(keys.jm, b"LK1/export\x00" + keys.lock_id + body)
