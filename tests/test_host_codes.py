"""Host side (lockproto.codes, lockproto.errors): the one code table, its words, the typed error."""

from __future__ import annotations

import pickle
import uuid

import pytest

from lockproto import codes
from lockproto.codes import Bolt, ConfigKey, DenyKind, Err, Event, Flag, MsgType, Op, Right
from lockproto.errors import ProtocolError

# §4.7, by hand from docs/protocol.md
SPEC_CODES = ["OK", "MALFORMED", "UNSUPPORTED_VERSION", "UNKNOWN_TYPE", "UNKNOWN_OP", "TOO_LARGE", "FRAGMENT",
              "WRONG_LOCK", "WRONG_EPOCH", "BAD_MAC", "NOT_YET_VALID", "EXPIRED", "OUTSIDE_WINDOW", "REVOKED",
              "NO_RIGHT", "LOCKED_OUT", "BAD_COUNTER", "NO_SESSION", "TIME_UNCERTAIN", "STALE", "UNWRAP_FAILED",
              "CAPACITY", "NOT_FOUND", "MECHANISM", "BATTERY_CRITICAL", "STORAGE", "TIMEOUT", "FACTORY_MODE", "BUSY",
              "INTERNAL", "PROVISIONED", "BACKLOG"]


def test_error_codes_are_exactly_the_spec_table():
    assert [(e.name, e.value) for e in Err] == [(n, i) for i, n in enumerate(SPEC_CODES)]


@pytest.mark.parametrize("code", list(Err))
def test_every_code_has_a_sentence(code):
    text = code.describe()
    assert isinstance(text, str) and len(text) > 3 and text[0].isupper() and text.endswith(".")
    assert "_" not in text  # words for people, not identifiers


def test_other_numbers():
    assert {m.name: m.value for m in MsgType} == {"HELLO": 1, "AUTH": 2, "RESULT": 3, "OP": 4, "ERROR": 5,
                                                  "PROVISION": 6, "PROVISIONED": 7}
    assert {m.name: m.value for m in Op} == {"NOP": 0, "UNLOCK": 1, "LOCK": 2, "STATUS": 3, "JOURNAL_READ": 0x10,
                                             "JOURNAL_ACK": 0x11, "TIME_SET": 0x12, "DENY_UPDATE": 0x13,
                                             "REKEY": 0x14, "CONFIG": 0x15, "FACTORY_RESET": 0x16}
    assert {m.name: m.value for m in Right} == {"UNLOCK": 1, "LOCK": 2, "JOURNAL": 4, "ADMIN": 8}
    assert [m.value for m in Flag] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert [m.name for m in Flag] == ["TIME_UNCERTAIN", "BATTERY_LOW", "BATTERY_CRITICAL", "JOURNAL_BACKLOG",
                                      "FACTORY", "DOOR_OPEN", "LOCKED_OUT", "DENY_STALE"]
    assert [(m.name, m.value) for m in Bolt] == [("UNKNOWN", 0), ("LOCKED", 1), ("UNLOCKING", 2), ("UNLOCKED", 3),
                                                 ("LOCKING", 4), ("JAMMED", 5)]
    assert [m.value for m in Event] == list(range(1, 0x16))
    assert Event.BOOT == 1 and Event.REKEYED == 0x0F and Event.OVERFLOW == 0x10 and Event.PROVISIONED == 0x13
    assert (DenyKind.TICKET, DenyKind.USER) == (1, 2)
    assert [m.value for m in ConfigKey] == [1, 2, 3, 4, 5]
    assert ConfigKey.POWER_PROFILE == 5 and ConfigKey.LOCKOUT_THRESHOLD == 3


def test_constants():
    c = codes
    assert (c.PROTO_MIN, c.PROTO_MAX, c.MAX_MESSAGE, c.TICKET_LEN, c.STATE_LEN, c.HELLO_LEN, c.HELLO_MAX) == \
        (1, 1, 1024, 41, 21, 55, 128)
    assert (c.SKEW, c.MAX_UNCERTAIN_LIFETIME, c.DENY_CAPACITY, c.CHUNK_MAX, c.RECORD_LEN) == (60, 43200, 64, 16, 32)
    assert c.SERVICE_UUID == "65b3434c-caee-4cff-b110-b8094531587c"
    assert c.RX_UUID == "f86ee927-fee6-483e-bfba-e499943801d3"
    assert c.TX_UUID == "5258490e-a0ff-4057-af7b-871965383e93"
    for u in (c.SERVICE_UUID, c.RX_UUID, c.TX_UUID):
        assert str(uuid.UUID(u)) == u
    # §4 sizes: fixed parts of the messages
    assert (c.AUTH_MIN, c.OP_MIN, c.RESULT_MIN, c.ERROR_LEN) == (1 + 1 + 41 + 16 + 1 + 16, 1 + 4 + 1 + 16,
                                                                 1 + 4 + 1 + 1 + 16, 6)
    # §10: the largest messages fit
    assert c.AUTH_MIN + 5 + 9 * c.DENY_CAPACITY + 16 <= c.MAX_MESSAGE
    assert c.RESULT_MIN + 21 + c.RECORD_LEN * c.CHUNK_MAX + 16 == 23 + 549


def test_protocol_error_str_code_and_detail():
    e = ProtocolError(Err.LOCKED_OUT, 45)
    assert e.code is Err.LOCKED_OUT and e.detail == 45
    assert str(e) == f"LOCKED_OUT: {Err.LOCKED_OUT.describe()} (detail 45)"
    assert str(ProtocolError(9)) == f"BAD_MAC: {Err.BAD_MAC.describe()} (detail 0)"
    assert ProtocolError(9).code is Err.BAD_MAC  # ints become Err
    with pytest.raises(ValueError):
        ProtocolError(99)
    again = pickle.loads(pickle.dumps(e))
    assert (again.code, again.detail) == (e.code, e.detail)
