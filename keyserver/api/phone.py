"""The phone-facing API (bearer tokens of kind ``phone``): bundles, time tokens, journals, proofs, hints.

This is what the carers' app and the fleet simulator's phones call; docs/keyserver.md
("Phone API") describes each answer byte for byte.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from lockproto import ProtocolError, time_token
from lockproto.wire import Hello

from .. import ingest, rekey
from ..errors import Invalid, NotFound
from ..keystore import KeyRing, get_lock, now
from ..models import Rekey
from ..tickets import BundleRequest, issue_bundle
from .deps import phone_principal, state
from .schemas import BundleIn, HelloIn, JournalIn, ProofIn, TimeTokenIn

router = APIRouter(prefix="/api/v1/phone", tags=["phone"])


@router.post("/bundle", summary="Every ticket this phone's carer may use in the coming shift, with deny lists, "
                                "re-key messages and journal acknowledgements to relay")
def bundle(body: BundleIn, request: Request, p=phone_principal()):
    st = state(request)
    return st.db.run(lambda s: issue_bundle(s, st.vault, st.settings, p.staff_id, p.phone_id,
                                            BundleRequest(body.start, body.hours)))


@router.post("/time-token", summary="A time token (TIME_SET args) bound to the nonce of the lock's HELLO")
def time_token_ep(body: TimeTokenIn, request: Request, p=phone_principal()):
    st = state(request)
    with st.db.tx() as s:
        lock = get_lock(s, body.lock_id)
        ring = KeyRing(s, st.vault, lock)
        if ring.state(body.epoch) not in ("active", "pending", "cancelled") or body.epoch < lock.epoch:
            raise Invalid(f"lock {lock.lock_id} is not at epoch {body.epoch} as far as the server knows")
        t = now()
        return {"lock_id": lock.lock_id, "epoch": body.epoch, "time": t,
                "token": time_token(ring.full(body.epoch), bytes.fromhex(body.nonce), t).hex()}


@router.post("/journal", summary="Upload one export chunk (JOURNAL_READ payload); returns the JOURNAL_ACK to relay")
def journal(body: JournalIn, request: Request, p=phone_principal()):
    st = state(request)
    return st.db.run(lambda s: ingest.ingest_chunk(s, st.vault, body.lock_id, bytes.fromhex(body.chunk), p.staff_id))


@router.post("/rekey-proof", summary="The REKEY RESULT payload the lock answered: completes the re-key")
def rekey_proof(body: ProofIn, request: Request, p=phone_principal()):
    st = state(request)
    return st.db.run(lambda s: rekey.prove(s, st.vault, body.lock_id, bytes.fromhex(body.proof), p.staff_id))


@router.post("/hello", summary="Report a lock's HELLO (unauthenticated hints: battery, flags, versions); "
                               "answers what the lock needs relayed")
def hello(body: HelloIn, request: Request, p=phone_principal()):
    st = state(request)
    try:
        h = Hello.decode(bytes.fromhex(body.hello))
    except ProtocolError as e:
        raise Invalid(f"not a HELLO message ({e.code.name})") from None

    def work(s):
        try:
            lock = get_lock(s, h.lock_id.hex(), for_update=True)
        except NotFound:
            raise NotFound(f"lock {h.lock_id.hex()} is not registered") from None
        st_ = h.state
        lock.seen_at, lock.seen_flags, lock.seen_epoch = now(), st_.flags, h.epoch
        lock.seen_deny_version, lock.seen_journal_head = st_.deny_version, st_.journal_head
        if st_.battery_pct != 255:
            lock.seen_battery_pct = st_.battery_pct
        if st_.battery_mv:
            lock.seen_battery_mv = st_.battery_mv
            from ..models import BatterySample
            s.add(BatterySample(lock_pk=lock.id, at=lock.seen_at, mv=st_.battery_mv,
                                pct=st_.battery_pct if st_.battery_pct != 255 else 0, source="hello"))
        pending = s.query(Rekey).filter(Rekey.lock_pk == lock.id, Rekey.state == "pending").first()
        return {"lock_id": lock.lock_id, "deny_update": st_.deny_version < lock.deny_version,
                "time_token": bool(st_.flags & 0x01),
                "rekey": bool(pending and not pending.onsite and h.epoch == pending.old_epoch),
                "journal_from_seq": lock.journal_seq + 1 if st_.journal_head > lock.journal_seq else None}

    return st.db.run(work)
