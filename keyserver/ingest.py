"""Journal ingestion (protocol §6): decrypt, verify the chain, store once, acknowledge.

One upload is one export chunk (a JOURNAL_READ payload) a phone relayed. The server
keeps, per lock, the verified contiguous prefix it holds (``journal_seq``, its chain
value and the epoch in force after it). For a chunk:

1. ``open_chunk`` checks the export MAC and decrypts (keys of the chunk's epoch: the
   lock's current one, or a pending re-key's new one);
2. records at or below ``journal_seq`` are duplicates: each must equal the stored one
   (same chain value), else the upload is refused as a forked history (409);
3. the new records must start at ``journal_seq + 1`` and chain from the stored value;
   if they start later, the missing range is recorded as a *gap* and the chain is checked
   from the chunk's authenticated ``prev_chain`` instead; a gap becomes *overflow* (explained)
   once an OVERFLOW record's count of records lost covers every gap seen;
4. any chain failure refuses the whole chunk (422, naming the first bad sequence);
   nothing is stored;
5. the answer carries a JOURNAL_ACK (§6.4) up to the first unexplained gap (or the new
   ``journal_seq``), MACed under the chunk's epoch, which the phone relays so the lock may
   erase those records. Records past an unexplained gap are stored but not acknowledged.

Uploading the same chunk again stores nothing and returns the same acknowledgement.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from lockproto import Event, ProtocolError, journal_ack, open_chunk, verify_chain
from lockproto.codes import Err
from lockproto.journal import chain_genesis

from .battery import record_sag_mv
from .errors import Conflict, Invalid
from .keystore import KeyRing, audit, get_lock, now
from .models import BatterySample, JournalGap, JournalRecord
from .rekey import complete_from_journal, drop_spent_journal_keys
from .vault import Vault


def explain_gaps(s: Session, lock, lost_total: int) -> None:
    """The lock's OVERFLOW record says ``lost_total`` records were lost so far: when that covers every gap
    the server has seen, the gaps are explained (kind ``overflow``) and may be acknowledged past."""
    gaps = list(s.execute(select(JournalGap).where(JournalGap.lock_pk == lock.id)).scalars())
    if sum(g.to_seq - g.from_seq + 1 for g in gaps) <= lost_total:
        for g in gaps:
            g.kind = "overflow"


def ack_for(s: Session, ring: KeyRing, epoch: int) -> tuple[int, str | None]:
    """(seq, JOURNAL_ACK args hex) the server acknowledges: everything stored up to the first gap the lock
    has not explained by an OVERFLOW record. Records after such a gap are stored (and reported) but not
    acknowledged, so a phone that skipped records cannot make the lock erase what the server never saw."""
    lock = ring.lock
    first_open = s.execute(select(func.min(JournalGap.from_seq)).where(
        JournalGap.lock_pk == lock.id, JournalGap.kind == "gap")).scalar_one()
    seq = lock.journal_seq if first_open is None else first_open - 1
    if seq <= 0:
        return 0, None
    if seq == lock.journal_seq:
        chain = lock.journal_chain
    else:
        chain = s.execute(select(JournalRecord.chain).where(JournalRecord.lock_pk == lock.id,
                                                            JournalRecord.seq == seq)).scalar_one()
    return seq, journal_ack(ring.full(epoch), seq, bytes.fromhex(chain)).hex()


def ingest_chunk(s: Session, vault: Vault, lock_id: str, payload: bytes, actor_id: int | None) -> dict:
    t = now()
    lock = get_lock(s, lock_id, for_update=True)
    ring = KeyRing(s, vault, lock)
    try:
        chunk = open_chunk(ring.full, payload)
    except ProtocolError as e:
        if e.code == Err.WRONG_EPOCH:
            raise Invalid(f"the chunk is under epoch {e.detail}, for which the server has no key") from None
        if e.code == Err.BAD_MAC:
            raise Invalid("the chunk failed its export MAC: not from this lock, or altered") from None
        raise Invalid(f"the chunk is malformed ({e.code.name})") from None

    stored = lock.journal_seq
    dups = [r for r in chunk.records if r.seq <= stored]
    new = [r for r in chunk.records if r.seq > stored]
    if dups:
        have = {row.seq: row.chain for row in s.execute(
            select(JournalRecord).where(JournalRecord.lock_pk == lock.id,
                                        JournalRecord.seq.in_([r.seq for r in dups]))).scalars()}
        for r in dups:
            if r.seq in have and have[r.seq] != r.chain.hex():
                raise Conflict(f"record {r.seq} differs from the one stored earlier: the lock's journal history forked")
    gap = None
    if new:
        first = new[0].seq
        if first == stored + 1:
            if stored:
                prev = bytes.fromhex(lock.journal_chain)
            else:
                prev = chain_genesis(ring.journal(lock.genesis_epoch).jm, ring.lid)
            starts = [lock.journal_epoch]
        else:
            prev = chunk.prev_chain  # authenticated by the export MAC
            gap = (stored + 1, first - 1, "gap")  # unexplained until the lock's OVERFLOW count covers it
            starts = [lock.journal_epoch] + ([chunk.epoch] if chunk.epoch != lock.journal_epoch else [])
        epoch_after = used = None
        err = None
        for start_epoch in starts:
            try:
                epoch_after = verify_chain(ring.journal, prev, new, start_epoch)
                used = start_epoch
                break
            except ProtocolError as e:
                err = e
        if epoch_after is None:
            raise Invalid(f"journal chain broken at record {err.detail}: a record was edited, dropped or "
                          "reordered; nothing was stored")
        rows, battery = [], []
        for r in new:
            if r.event == Event.REKEYED:
                used = r.arg
            rows.append(dict(lock_pk=lock.id, seq=r.seq, epoch=used, time=r.time, event=r.event, flags=r.flags,
                             arg16=r.arg16, user_id=r.user_id, ticket_id=r.ticket_id, arg=r.arg,
                             chain=r.chain.hex(), ingested_at=t))
            if r.event == Event.BATTERY:
                battery.append(dict(lock_pk=lock.id, at=r.time, mv=r.arg16, pct=r.arg & 0xFF, source="journal",
                                    sag_mv=record_sag_mv(r.arg)))
        s.execute(insert(JournalRecord), rows)  # one executemany, no ORM objects
        if battery:
            s.execute(insert(BatterySample), battery)
        if gap:
            s.add(JournalGap(lock_pk=lock.id, from_seq=gap[0], to_seq=gap[1], kind=gap[2], detected_at=t))
            s.flush()
        lost = [r.arg for r in new if r.event == Event.OVERFLOW]
        if lost:
            explain_gaps(s, lock, max(lost))
        if gap:
            gap = (gap[0], gap[1], s.execute(select(JournalGap.kind).where(
                JournalGap.lock_pk == lock.id, JournalGap.from_seq == gap[0])).scalar_one())
        lock.journal_seq = new[-1].seq
        lock.journal_chain = new[-1].chain.hex()
        lock.journal_epoch = epoch_after
        for r in new:
            if r.event == Event.REKEYED:
                complete_from_journal(s, lock, r.arg, t)
        drop_spent_journal_keys(s, lock, t)
    ack_seq, ack = ack_for(s, ring, chunk.epoch)
    if new or gap:
        audit(s, "journal.ingest", f"lock:{lock.lock_id}", actor_id=actor_id, at=t, stored=len(new),
              duplicates=len(dups), gap=list(gap) if gap else None, upto=lock.journal_seq)
    more = chunk.head_seq > lock.journal_seq
    return {"lock_id": lock.lock_id, "stored": len(new), "duplicates": len(dups),
            "gap": {"from_seq": gap[0], "to_seq": gap[1], "kind": gap[2]} if gap else None,
            "journal_seq": lock.journal_seq, "acked_seq": ack_seq, "head_seq": chunk.head_seq, "more": more,
            "next_from_seq": lock.journal_seq + 1, "ack": ack}
