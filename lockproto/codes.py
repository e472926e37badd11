"""Every number of the lock protocol (docs/protocol.md), with words for people.

This is the one code table on the host side: the firmware uses the same numbers
(firmware/lib/lockcodes.py); CLIs and HTTP handlers turn codes into words only
through :meth:`Err.describe`.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class Err(IntEnum):
    """Status and error codes (protocol §4.7), in RESULT ``status`` and ERROR ``code``."""

    OK = 0
    MALFORMED = 1
    UNSUPPORTED_VERSION = 2
    UNKNOWN_TYPE = 3
    UNKNOWN_OP = 4
    TOO_LARGE = 5
    FRAGMENT = 6
    WRONG_LOCK = 7
    WRONG_EPOCH = 8
    BAD_MAC = 9
    NOT_YET_VALID = 10
    EXPIRED = 11
    OUTSIDE_WINDOW = 12
    REVOKED = 13
    NO_RIGHT = 14
    LOCKED_OUT = 15
    BAD_COUNTER = 16
    NO_SESSION = 17
    TIME_UNCERTAIN = 18
    STALE = 19
    UNWRAP_FAILED = 20
    CAPACITY = 21
    NOT_FOUND = 22
    MECHANISM = 23
    BATTERY_CRITICAL = 24
    STORAGE = 25
    TIMEOUT = 26
    FACTORY_MODE = 27
    BUSY = 28
    INTERNAL = 29
    PROVISIONED = 30
    BACKLOG = 31

    def describe(self) -> str:
        """One sentence for a carer or an IT person (the meaning column of §4.7)."""
        return _WORDS[self]


_WORDS: dict[Err, str] = {
    Err.OK: "Done.",
    Err.MALFORMED: "The message was garbled: a length or value does not fit the lock protocol.",
    Err.UNSUPPORTED_VERSION: "The lock and the app (or the key) speak different protocol versions; "
                             "one of them needs an update.",
    Err.UNKNOWN_TYPE: "The lock does not know this kind of message.",
    Err.UNKNOWN_OP: "The lock does not know this operation; it may need a firmware update.",
    Err.TOO_LARGE: "The message is longer than the 1024 bytes the lock accepts.",
    Err.FRAGMENT: "A piece of the radio message arrived out of order or broken; try again.",
    Err.WRONG_LOCK: "This key is for another lock.",
    Err.WRONG_EPOCH: "This key belongs to an older or newer key generation of the lock; fetch fresh keys.",
    Err.BAD_MAC: "The message failed its authenticity check.",
    Err.NOT_YET_VALID: "This key is not valid yet.",
    Err.EXPIRED: "This key has expired.",
    Err.OUTSIDE_WINDOW: "This key is not valid at this time of day or on this weekday.",
    Err.REVOKED: "This key, or the person it was issued to, has been revoked.",
    Err.NO_RIGHT: "This key does not allow that operation.",
    Err.LOCKED_OUT: "Too many failed attempts; the lock refuses keys for a while.",
    Err.BAD_COUNTER: "The session's message counter is wrong; reconnect.",
    Err.NO_SESSION: "There is no open session with the lock; reconnect.",
    Err.TIME_UNCERTAIN: "The lock lost track of time; connect once with a phone that is online so it can set the clock.",
    Err.STALE: "The lock already holds this or a newer deny list or key.",
    Err.UNWRAP_FAILED: "The new lock key failed its integrity check and was not installed.",
    Err.CAPACITY: "More entries than the lock can store.",
    Err.NOT_FOUND: "No such journal record or setting.",
    Err.MECHANISM: "The bolt is jammed or the motor failed.",
    Err.BATTERY_CRITICAL: "The battery is too low to run the motor safely; replace the batteries.",
    Err.STORAGE: "The lock could not write to its memory; nothing was changed.",
    Err.TIMEOUT: "The other side took too long to answer.",
    Err.FACTORY_MODE: "The lock has not been set up (provisioned) yet.",
    Err.BUSY: "The lock is busy with another session or moving the bolt; try again.",
    Err.INTERNAL: "The lock hit an unexpected internal error and stayed locked.",
    Err.PROVISIONED: "The unit is already set up; reset it to factory mode first.",
    Err.BACKLOG: "The lock still holds journal records the server has not acknowledged; upload its journal first.",
}


class MsgType(IntEnum):
    """Message types, the first byte of every message (§4)."""

    HELLO = 0x01
    AUTH = 0x02
    RESULT = 0x03
    OP = 0x04
    ERROR = 0x05
    PROVISION = 0x06
    PROVISIONED = 0x07


class Op(IntEnum):
    """Operations (§4.6)."""

    NOP = 0x00
    UNLOCK = 0x01
    LOCK = 0x02
    STATUS = 0x03
    JOURNAL_READ = 0x10
    JOURNAL_ACK = 0x11
    TIME_SET = 0x12
    DENY_UPDATE = 0x13
    REKEY = 0x14
    CONFIG = 0x15
    FACTORY_RESET = 0x16


class Right(IntFlag):
    """Ticket rights bits (§2.3); bits 0x10..0x80 are reserved and must be 0."""

    UNLOCK = 0x01
    LOCK = 0x02
    JOURNAL = 0x04
    ADMIN = 0x08


RIGHTS_RESERVED = 0xF0

#: The right each op needs (§4.6); ops not listed need none beyond a valid ticket.
OP_RIGHT: dict[Op, Right] = {Op.UNLOCK: Right.UNLOCK, Op.LOCK: Right.LOCK, Op.JOURNAL_READ: Right.JOURNAL,
                             Op.CONFIG: Right.ADMIN, Op.FACTORY_RESET: Right.ADMIN}


class Flag(IntFlag):
    """State-block and advertisement flags (§4.1)."""

    TIME_UNCERTAIN = 0x01
    BATTERY_LOW = 0x02
    BATTERY_CRITICAL = 0x04
    JOURNAL_BACKLOG = 0x08
    FACTORY = 0x10
    DOOR_OPEN = 0x20
    LOCKED_OUT = 0x40
    DENY_STALE = 0x80


class Bolt(IntEnum):
    """Bolt states (§4.1)."""

    UNKNOWN = 0
    LOCKED = 1
    UNLOCKING = 2
    UNLOCKED = 3
    LOCKING = 4
    JAMMED = 5


class Event(IntEnum):
    """Journal events (§6.5)."""

    BOOT = 0x01
    UNLOCK = 0x02
    LOCK = 0x03
    DENIED = 0x04
    DOOR_OPEN = 0x05
    DOOR_CLOSED = 0x06
    AUTO_RELOCK = 0x07
    BUTTON = 0x08
    JAM = 0x09
    LOCKOUT = 0x0A
    BATTERY = 0x0B
    TIME_SET = 0x0C
    TIME_UNCERTAIN = 0x0D
    DENY_UPDATED = 0x0E
    REKEYED = 0x0F
    OVERFLOW = 0x10
    CONFIG = 0x11
    DOOR_LEFT_OPEN = 0x12
    PROVISIONED = 0x13
    JOURNAL_PAUSED = 0x14
    WAKE_MUTED = 0x15


class BatteryReason(IntEnum):
    """Why a BATTERY record was written (§6.5: ``arg`` bits 16..23)."""

    DAILY = 0
    BOOT = 1
    LOW = 2
    CRITICAL = 3
    OK = 4
    FLOOR = 5


def battery_record(arg16: int, arg: int) -> dict:
    """The fields of a BATTERY record (§6.5): idle mV, percent (None: unknown), flags, reason, sag mV.

    ``sag_mv`` is None until the lock has measured a motor run.
    """
    pct = arg & 0xFF
    sag = (arg >> 24) & 0xFF
    return {"mv": arg16, "pct": None if pct == 255 else pct, "flags": Flag((arg >> 8) & 0xFF),
            "reason": BatteryReason((arg >> 16) & 0xFF), "sag_mv": sag * 10 if sag else None}


class DenyKind(IntEnum):
    """Kinds of deny-list entries (§5.2)."""

    TICKET = 1
    USER = 2


class ConfigKey(IntEnum):
    """Config keys of op CONFIG (§4.6)."""

    RELOCK_DELAY = 1
    DOOR_ALARM = 2
    LOCKOUT_THRESHOLD = 3
    LOCKOUT_SECONDS = 4
    POWER_PROFILE = 5


# directions in the frame MAC (§4.2)
DIR_PHONE = 0x50  # "P", phone -> lock
DIR_LOCK = 0x4C   # "L", lock -> phone

PROTO_MIN = 1
PROTO_MAX = 1
TICKET_FORMAT = 1
MAX_MESSAGE = 1024
TICKET_LEN = 41
STATE_LEN = 21
HELLO_LEN = 55
HELLO_MAX = 128
AUTH_MIN = 76
OP_MIN = 22
RESULT_MIN = 23
ERROR_LEN = 6
NONCE_LEN = 16
MAC_LEN = 16
KEY_LEN = 32
LOCK_ID_LEN = 8
CHAIN_LEN = 8
SKEW = 60
MAX_UNCERTAIN_LIFETIME = 43200
DENY_CAPACITY = 64
DENY_ENTRY_LEN = 9
CHUNK_MAX = 16
RECORD_LEN = 32
RECORD_BODY_LEN = 24
CHUNK_HEAD_LEN = 21
TIME_TOKEN_LEN = 20
REKEY_LEN = 60
REKEY_PROOF_LEN = 20
ACK_LEN = 28
WRAPPED_LEN = 40
DEFAULT_MTU = 23
FRAGMENT_TIMEOUT = 2.0
ADV_COMPANY_ID = 0xFFFF

# BLE GATT (§3.1)
SERVICE_UUID = "65b3434c-caee-4cff-b110-b8094531587c"
RX_UUID = "f86ee927-fee6-483e-bfba-e499943801d3"
TX_UUID = "5258490e-a0ff-4057-af7b-871965383e93"
