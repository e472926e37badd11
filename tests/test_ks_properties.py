"""Property tests of the key server's journal store (hypothesis, on a real SQLite file).

For any journal, cut into any chunks, uploaded in order with any repeats of earlier
chunks, the server ends with exactly the lock's records, no gap, and the
acknowledgement of the last record; the acknowledged sequence never goes back. Any
single flipped bit in an upload is refused and changes nothing.
"""

from __future__ import annotations

import secrets

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import text

from lockproto import Event, LockKeys, journal_ack
from lockproto.journal import Record, chain_genesis, make_export_chunk, seal

from keyserver.api.access import register_lock
from keyserver.api.schemas import LockIn
from keyserver.db import Database
from keyserver.errors import ApiError
from keyserver.ingest import ingest_chunk
from keyserver.vault import Vault

EVENTS = [Event.UNLOCK, Event.LOCK, Event.DOOR_OPEN, Event.DOOR_CLOSED, Event.BATTERY, Event.BUTTON, Event.DENIED]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('ksprop') / 'ks.db'}"
    db = Database(url)
    db.migrate()
    yield db, Vault(secrets.token_bytes(32))
    db.dispose()


def _lock(db, vault):
    master, lid = secrets.token_bytes(32), secrets.token_bytes(8)
    with db.tx() as s:
        register_lock(s, vault, LockIn(lock_id=lid.hex(), key=master.hex()), None)
    return LockKeys.from_master(master, lid, 1)


def _journal(keys, events):
    prev, out = chain_genesis(keys.jm, keys.lock_id), []
    for i, (ev, user, arg16) in enumerate(events):
        r = seal(keys.jm, prev, Record(seq=i + 1, time=1_800_000_000 + 30 * i, event=int(ev), user_id=user,
                                       arg16=arg16))
        out.append(r)
        prev = r.chain
    return out


def _chunks(keys, recs, cuts):
    genesis = chain_genesis(keys.jm, keys.lock_id)
    bounds, i = [], 0
    for c in cuts:
        if i >= len(recs):
            break
        bounds.append((i, min(len(recs), i + c)))
        i += c
    if i < len(recs):
        bounds += [(j, min(len(recs), j + 16)) for j in range(i, len(recs), 16)]
    return [make_export_chunk(keys, a + 1, recs[a:b], len(recs), recs[a - 1].chain if a else genesis)
            for a, b in bounds]


event = st.tuples(st.sampled_from(EVENTS), st.integers(0, 5), st.integers(0, 6000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=50), cuts=st.lists(st.integers(1, 16), max_size=10),
       repeats=st.lists(st.integers(0, 1000), max_size=6))
def test_any_chunking_with_repeats_stores_exactly_the_journal(store, events, cuts, repeats):
    db, vault = store
    keys = _lock(db, vault)
    recs = _journal(keys, events)
    chunks = _chunks(keys, recs, cuts)
    plan = []
    for i, c in enumerate(chunks):
        plan.append(c)
        for r in repeats:
            if r % len(chunks) <= i and r % 3 == 0:
                plan.append(chunks[r % (i + 1)])  # a phone uploads an earlier chunk again
    acked = 0
    for c in plan:
        out = db.run(lambda s: ingest_chunk(s, vault, keys.lock_id.hex(), c, None))
        assert out["acked_seq"] >= acked and out["gap"] is None
        acked = out["acked_seq"]
    assert acked == len(recs)
    assert out["ack"] == journal_ack(keys, len(recs), recs[-1].chain).hex()
    with db.tx() as s:
        rows = s.execute(text("SELECT seq, event, user_id, arg16, chain FROM journal_records r JOIN locks l "
                              "ON l.id = r.lock_pk WHERE l.lock_id = :l ORDER BY seq"),
                         {"l": keys.lock_id.hex()}).all()
    assert [tuple(r) for r in rows] == [(r.seq, r.event, r.user_id, r.arg16, r.chain.hex()) for r in recs]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(event, min_size=1, max_size=16), pos=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused_and_changes_nothing(store, events, pos, bit):
    db, vault = store
    keys = _lock(db, vault)
    recs = _journal(keys, events)
    chunk = bytearray(_chunks(keys, recs, [16])[0])
    chunk[pos % len(chunk)] ^= 1 << bit
    with pytest.raises(ApiError):
        db.run(lambda s: ingest_chunk(s, vault, keys.lock_id.hex(), bytes(chunk), None))
    with db.tx() as s:
        n = s.execute(text("SELECT count(*) FROM journal_records r JOIN locks l ON l.id = r.lock_pk "
                           "WHERE l.lock_id = :l"), {"l": keys.lock_id.hex()}).scalar_one()
        seq = s.execute(text("SELECT journal_seq FROM locks WHERE lock_id = :l"),
                        {"l": keys.lock_id.hex()}).scalar_one()
    assert n == 0 and seq == 0
