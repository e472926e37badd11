"""Host (CPython) side of the door-lock protocol of docs/protocol.md."""

from .codes import (
    MAX_MESSAGE, PROTO_MAX, PROTO_MIN, RX_UUID, SERVICE_UUID, TX_UUID, Bolt, ConfigKey, DenyKind, Err, Event, Flag,
    MsgType, Op, Right,
)
from .crypto import LockKeys, new_master
from .errors import ProtocolError
from .fragment import FrameDecoder, Reassembler, encode_frame, fragment
from .issuer import (
    deny_list, issue_ticket, journal_ack, rekey_message, rekey_pair, rekey_proof, ticket_key, time_token, verify_rekey_proof,
)
from .provision import factory_reset_statement, provision_message, provisioned_proof, read_provisioned
from .journal import ExportChunk, Record, make_export_chunk, open_chunk, verify_chain
from .phone import PhoneSession, lock_check_auth, lock_check_op, lock_result
from .wire import Auth, ErrorFrame, Hello, OpFrame, Result, StateBlock, Ticket, decode_message

__all__ = [
    "MAX_MESSAGE", "PROTO_MAX", "PROTO_MIN", "RX_UUID", "SERVICE_UUID", "TX_UUID",
    "Bolt", "ConfigKey", "DenyKind", "Err", "Event", "Flag", "MsgType", "Op", "Right",
    "LockKeys", "new_master", "ProtocolError",
    "FrameDecoder", "Reassembler", "encode_frame", "fragment",
    "deny_list", "issue_ticket", "journal_ack", "rekey_message", "rekey_pair", "rekey_proof", "ticket_key", "time_token",
    "verify_rekey_proof",
    "factory_reset_statement", "provision_message", "provisioned_proof", "read_provisioned",
    "ExportChunk", "Record", "make_export_chunk", "open_chunk", "verify_chain",
    "PhoneSession", "lock_check_auth", "lock_check_op", "lock_result",
    "Auth", "ErrorFrame", "Hello", "OpFrame", "Result", "StateBlock", "Ticket", "decode_message",
]
