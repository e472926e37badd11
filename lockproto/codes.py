"""Every number of the lock protocol (docs/protocol.md), with words for people.

This is the one code table: firmware uses the same numbers (firmware/lib/lockcodes.py);
CLIs and HTTP handlers translate codes into words only through :meth:`Err.describe`.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class Err(IntEnum):
    """Status and error codes (protocol §4.7)."""

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

    def describe(self) -> str:
        """One sentence for a carer or an IT person."""
        return _WORDS[self]


_WORDS = {
    Err.OK: "done",
    Err.MALFORMED: "the message was not well formed",
    Err.UNSUPPORTED_VERSION: "the lock and the app speak different protocol versions; one of them needs an update",
    Err.UNKNOWN_TYPE: "the lock does not know this kind of message",
    Err.UNKNOWN_OP: "the lock does not know this operation",
    Err.TOO_LARGE: "the message is longer than 1024 bytes",
    Err.FRAGMENT: "a radio fragment arrived out of order; try again",
    Err.WRONG_LOCK: "this key is for another lock",
    Err.WRONG_EPOCH: "this key is from another key generation of the lock; fetch new keys",
    Err.BAD_MAC: "the message failed its authenticity check",
    Err.NOT_YET_VALID: "this key is not valid yet",
    Err.EXPIRED: "this key has expired",
    Err.OUTSIDE_WINDOW: "this key is not valid at this time of day",
    Err.REVOKED: "this key or its holder has been revoked",
    Err.NO_RIGHT: "this key does not allow that operation",
    Err.LOCKED_OUT: "too many failed attempts; the lock refuses keys for a while",
    Err.BAD_COUNTER: "the session's message counter is wrong; reconnect",
    Err.NO_SESSION: "no session is open; reconnect",
    Err.TIME_UNCERTAIN: "the lock lost track of time; connect with a phone that is online to set it",
    Err.STALE: "the lock already holds this or a newer version",
    Err.UNWRAP_FAILED: "the new lock key could not be unwrapped",
    Err.CAPACITY: "more entries than the lock can store",
    Err.NOT_FOUND: "no such journal record or setting",
    Err.MECHANISM: "the bolt is jammed or the motor failed",
    Err.BATTERY_CRITICAL: "the battery is too low to run the motor safely",
    Err.STORAGE: "the lock could not write its flash; nothing was changed",
    Err.TIMEOUT: "the other side took too long",
    Err.FACTORY_MODE: "the lock is not provisioned yet",
    Err.BUSY: "the lock is busy; try again",
    Err.INTERNAL: "the lock hit an internal error and stayed locked",
}


class MsgType(IntEnum):
    HELLO = 1
    AUTH = 2
    RESULT = 3
    OP = 4
    ERROR = 5


class Op(IntEnum):
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


class Right(IntFlag):
    UNLOCK = 0x01
    LOCK = 0x02
    JOURNAL = 0x04
    ADMIN = 0x08


RIGHTS_RESERVED = 0xF0


class Flag(IntFlag):
    TIME_UNCERTAIN = 0x01
    BATTERY_LOW = 0x02
    BATTERY_CRITICAL = 0x04
    JOURNAL_BACKLOG = 0x08
    FACTORY = 0x10
    DOOR_OPEN = 0x20
    LOCKED_OUT = 0x40
    DENY_STALE = 0x80


class Bolt(IntEnum):
    UNKNOWN = 0
    LOCKED = 1
    UNLOCKING = 2
    UNLOCKED = 3
    LOCKING = 4
    JAMMED = 5


class Event(IntEnum):
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


class DenyKind(IntEnum):
    TICKET = 1
    USER = 2


class ConfigKey(IntEnum):
    RELOCK_DELAY = 1
    DOOR_ALARM = 2
    LOCKOUT_THRESHOLD = 3
    LOCKOUT_SECONDS = 4
    POWER_PROFILE = 5


DIR_PHONE = 0x50
DIR_LOCK = 0x4C
PROTO_MIN = 1
PROTO_MAX = 1
TICKET_FORMAT = 1
MAX_MESSAGE = 1024
TICKET_LEN = 41
STATE_LEN = 21
HELLO_LEN = 55
HELLO_MAX = 128
NONCE_LEN = 16
MAC_LEN = 16
SKEW = 60
MAX_UNCERTAIN_LIFETIME = 43200
DENY_CAPACITY = 64
CHUNK_MAX = 16
RECORD_LEN = 32
DEFAULT_MTU = 23
ADV_COMPANY_ID = 0xFFFF

SERVICE_UUID = "65b3434c-caee-4cff-b110-b8094531587c"
RX_UUID = "f86ee927-fee6-483e-bfba-e499943801d3"
TX_UUID = "5258490e-a0ff-4057-af7b-871965383e93"
