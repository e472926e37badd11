"""Maintenance of a lock by IT with the serial tool (``lockctl``): the factory reset.

A factory reset erases a lock's keys and journal; the lock accepts it only with a
ticket carrying ADMIN, a fully acknowledged journal, and this statement from the
server, bound to the nonce of the HELLO on the connection (protocol §3.4). Issuing
it is audited; the statement is useless on any other connection.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field, field_validator

from lockproto import factory_reset_statement

from ..errors import Invalid
from ..keystore import KeyRing, audit, get_lock, lock_id_bytes, now
from .deps import require, state
from .schemas import Body, _hex

router = APIRouter(prefix="/api/v1", tags=["locks"])


class FactoryResetIn(Body):
    epoch: int = Field(ge=1, le=0xFFFFFFFF, description="the epoch the lock announced in its HELLO")
    nonce: str = Field(description="nonce_L of the lock's HELLO on this connection (16 bytes hex)")

    @field_validator("nonce")
    @classmethod
    def _n(cls, v: str) -> str:
        return _hex(v, 16, "nonce")


@router.post("/locks/{lock_id}/factory-reset",
             summary="The server's consent to one factory reset, bound to one connection's HELLO (audited)")
def factory_reset(lock_id: str, body: FactoryResetIn, request: Request, p=require("admin")):
    st = state(request)
    lock_id_bytes(lock_id)
    with st.db.tx() as s:
        lock = get_lock(s, lock_id.lower(), for_update=True)
        if body.epoch != lock.epoch:
            raise Invalid(f"lock {lock.lock_id} is at epoch {lock.epoch} as far as the server knows, not {body.epoch}")
        stmt = factory_reset_statement(KeyRing(s, st.vault, lock).full(lock.epoch), bytes.fromhex(body.nonce))
        audit(s, "lock.factory_reset", f"lock:{lock.lock_id}", actor_id=p.staff_id, at=now(), epoch=lock.epoch)
        return {"lock_id": lock.lock_id, "epoch": lock.epoch, "statement": stmt.hex()}
