"""Host side of the lock protocol (docs/protocol.md): codes, crypto, messages, issuing, phone sessions."""

from .codes import Bolt, DenyKind, Err, Event, Flag, MsgType, Op, Right
from .crypto import LockKeys, new_master
from .errors import ProtocolError
from .issuer import deny_list, issue_ticket, journal_ack, rekey_message, time_token, verify_rekey_proof
from .journal import ExportChunk, Record, open_chunk, verify_chain
from .phone import PhoneSession
from .wire import Hello, StateBlock, Ticket

__all__ = [
    "Bolt", "DenyKind", "Err", "Event", "Flag", "MsgType", "Op", "Right", "LockKeys", "new_master",
    "ProtocolError", "deny_list", "issue_ticket", "journal_ack", "rekey_message", "time_token",
    "verify_rekey_proof", "ExportChunk", "Record", "open_chunk", "verify_chain", "PhoneSession",
    "Hello", "StateBlock", "Ticket",
]
