"""The lock's deny list (firmware/lib/lockdeny.py, protocol §5.2) under the real MicroPython."""

from __future__ import annotations

import itertools
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mpyhost

pytestmark = pytest.mark.mpy
MPY = Path(__file__).resolve().parent / "mpy"
T0 = 1_767_225_600
OK, MALFORMED, STALE, CAPACITY = 0, 1, 19, 21
TICKET, USER = 1, 2
_ids = itertools.count(1)

u32 = st.integers(0, 2 ** 32 - 1)
entry = st.tuples(st.sampled_from([TICKET, USER]), u32, u32)
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def w():
    with mpyhost.Worker(["logictest"], paths=[MPY], heapsize="1m") as worker:
        yield worker


class D:
    def __init__(self, w, **kw):
        self.w, self.name = w, f"d{next(_ids)}"
        w.call("logictest.new", self.name, "deny", kw)

    def __getattr__(self, method):
        return lambda *a: self.w.call("logictest.call", self.name, method, *a)

    @property
    def state(self):
        v, at, entries = self.w.call("logictest.deny_state", self.name)
        return v, at, [tuple(e) for e in entries]

    def close(self):
        self.w.call("logictest.drop", self.name)


def blob_of(version, updated_at, entries):
    """The documented persistent form, built independently on the host."""
    body = struct.pack(">BIIB", 1, version, updated_at, len(entries))
    body += b"".join(struct.pack(">BII", *e) for e in entries)
    return body + struct.pack(">I", zlib.crc32(body))


# ---------------------------------------------------------------- replace

def test_a_new_list_is_empty_version_zero(w):
    d = D(w)
    assert d.state == (0, 0, []) and d.encode() == blob_of(0, 0, [])
    assert not d.is_denied(1, 1, T0, True)


def test_replace_takes_a_newer_complete_list(w):
    d = D(w)
    e1 = [(TICKET, 7, T0 + 100), (USER, 42, T0 + 100)]
    assert d.replace(3, e1, T0, True) == OK
    assert d.state == (3, T0, e1)
    e2 = [(USER, 9, T0 + 50)]
    assert d.replace(4, e2, T0 + 10, True) == OK
    assert d.state == (4, T0 + 10, e2)          # a replacement, not a delta


@pytest.mark.parametrize("version", [0, 2, 3])
def test_same_or_older_version_is_stale_and_changes_nothing(w, version):
    d = D(w)
    d.replace(3, [(TICKET, 7, T0 + 100)], T0, True)
    assert d.replace(version, [], T0 + 5, True) == STALE
    assert d.state == (3, T0, [(TICKET, 7, T0 + 100)])


def test_capacity(w):
    d = D(w)
    full = [(USER, i, T0 + 100) for i in range(64)]
    assert d.replace(1, full + [(USER, 99, T0 + 100)], T0, True) == CAPACITY
    assert d.state == (0, 0, [])
    assert d.replace(1, full, T0, True) == OK and len(d.state[2]) == 64
    small = D(w, capacity=2)
    assert small.replace(1, full[:3], T0, True) == CAPACITY
    assert small.replace(1, full[:2], T0, True) == OK


def test_capacity_is_checked_before_the_version(w):
    # protocol §5.2 order: count (CAPACITY), kinds (MALFORMED), then version (STALE)
    d = D(w)
    d.replace(5, [], T0, True)
    assert d.replace(5, [(USER, i, 0) for i in range(65)], T0, True) == CAPACITY
    assert d.replace(5, [(3, 1, 0)], T0, True) == MALFORMED
    assert d.replace(5, [], T0, True) == STALE


def test_expired_entries_dropped_only_when_time_is_certain(w):
    entries = [(TICKET, 1, T0 - 1), (TICKET, 2, T0), (TICKET, 3, T0 + 1)]
    d = D(w)
    assert d.replace(1, entries, T0, True) == OK
    assert d.state[2] == [(TICKET, 3, T0 + 1)]     # expires <= now: no longer needed
    u = D(w)
    assert u.replace(1, entries, T0, False) == OK
    assert u.state[2] == entries                    # an uncertain clock keeps them all


# ---------------------------------------------------------------- is_denied

def test_kinds_match_their_own_ids_only(w):
    d = D(w)
    d.replace(1, [(TICKET, 7, T0 + 100), (USER, 42, T0 + 100)], T0, True)
    assert d.is_denied(7, 1, T0, True)       # ticket 7
    assert d.is_denied(1, 42, T0, True)      # user 42
    assert not d.is_denied(42, 7, T0, True)  # the ids of the other kind
    assert not d.is_denied(8, 43, T0, True)


def test_expired_entries_ignored_only_when_certain(w):
    d = D(w)
    d.replace(1, [(USER, 42, T0 + 100)], T0, True)
    assert d.is_denied(1, 42, T0 + 99, True)
    assert not d.is_denied(1, 42, T0 + 100, True)
    assert d.is_denied(1, 42, T0 + 100, False)   # uncertain: the lock's clock may be behind
    assert d.is_denied(1, 42, T0 + 10 ** 6, False)


@given(entries=st.lists(entry, max_size=20), now=u32, certain=st.booleans(),
       queries=st.lists(st.tuples(u32, u32, u32, st.booleans()), max_size=10))
@SLOW
def test_is_denied_against_the_rule(w, entries, now, certain, queries):
    # ask about the listed ids as well as random ones
    queries += [(e[1], e[1], q_now, c) for e in entries[:5] for q_now, c in ((now, certain), (e[2], True))]
    d = D(w)
    assert d.replace(1, entries, now, certain) == OK
    kept = [e for e in entries if not certain or e[2] > now]
    assert d.state[2] == kept
    for tid, uid, t, c in queries:
        want = any(((k == TICKET and i == tid) or (k == USER and i == uid)) and not (c and exp <= t)
                   for k, i, exp in kept)
        assert d.is_denied(tid, uid, t, c) == want
    d.close()


# ---------------------------------------------------------------- age

def test_age_since_the_last_update(w):
    d = D(w)
    assert d.age_s(T0) == T0                  # never updated: as stale as can be
    d.replace(1, [], T0, True)
    assert d.age_s(T0) == 0 and d.age_s(T0 + 86_401) == 86_401
    assert d.age_s(T0 - 10) == 0              # a clock resumed below the update
    d.replace(1, [], T0 + 500, True)          # stale versions do not refresh it
    assert d.age_s(T0 + 600) == 600


# ---------------------------------------------------------------- persistent form

def test_encode_is_the_documented_layout(w):
    d = D(w)
    entries = [(TICKET, 0xDEADBEEF, T0 + 1), (USER, 5, 2 ** 32 - 1)]
    d.replace(0x01020304, entries, T0, True)
    assert d.encode() == blob_of(0x01020304, T0, entries)


@given(version=u32, at=u32, entries=st.lists(entry, max_size=64))
@SLOW
def test_round_trip(w, version, at, entries):
    blob = blob_of(version, at, entries)
    assert w.call("logictest.deny_decode", blob) == ["ok", version, at, [list(e) for e in entries]]
    name = f"rt{next(_ids)}"
    w.call("logictest.new", name, "deny", {})
    if version:
        assert w.call("logictest.call", name, "replace", version, entries, at, False) == OK
        assert w.call("logictest.call", name, "encode") == blob
    w.call("logictest.drop", name)


@pytest.mark.parametrize("n", [0, 1, 5, 64])
def test_every_single_byte_change_is_detected(w, n):
    blob = blob_of(77, T0, [(TICKET if i % 2 else USER, 1000 + i, T0 + i) for i in range(n)])
    assert w.call("logictest.deny_decode", blob)[0] == "ok"
    undetected, first = w.call("logictest.deny_decode_all_flips", blob)
    assert (undetected, first) == (0, None)


def test_truncated_or_extended_blobs_are_detected(w):
    blob = blob_of(9, T0, [(USER, i, T0) for i in range(3)])
    for cut in range(len(blob)):
        assert w.call("logictest.deny_decode", blob[:cut])[0] == "ValueError"
    for extra in (b"\x00", b"\xff" * 4, blob[-4:]):
        assert w.call("logictest.deny_decode", blob + extra)[0] == "ValueError"


@pytest.mark.parametrize("why, version, entries, fmt", [
    ("format", 1, [], 2),
    ("kind", 1, [(3, 1, 1)], 1),
    ("capacity", 1, [(USER, i, 1) for i in range(65)], 1),
])
def test_well_checksummed_but_invalid_blobs_are_refused(w, why, version, entries, fmt):
    body = struct.pack(">BIIB", fmt, version, 0, len(entries)) + b"".join(struct.pack(">BII", *e) for e in entries)
    blob = body + struct.pack(">I", zlib.crc32(body))
    assert w.call("logictest.deny_decode", blob)[0] == "ValueError", why


@given(st.binary(max_size=120))
@SLOW
def test_random_bytes_decode_to_value_error_only(w, blob):
    got = w.call("logictest.deny_decode", blob)   # any other exception would raise here
    assert got[0] == "ValueError" or (got[0] == "ok" and blob_of(*got[1:3], [tuple(e) for e in got[3]]) == blob)


def test_memory_of_the_logic_objects(w):
    # heap held by a Mechanism, a Guard, a Clock and a full 64-entry deny list (576 bytes of
    # entries), measured on the 64-bit unix port (a 32-bit ESP32 needs less): a few KiB of a
    # 64 KiB budget
    used = w.call("logictest.footprint")
    assert used["deny64"] < 1024 and used["mech"] < 1024 and used["guard"] < 512 and used["clock"] < 512, used
    assert sum(used.values()) < 2500, used
