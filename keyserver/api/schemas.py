"""Request bodies. Every field is checked; unknown fields are refused (422 with the reason)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _hex(v: str, n: int | None, what: str) -> str:
    try:
        b = bytes.fromhex(v)
    except ValueError:
        raise ValueError(f"{what} must be hex") from None
    if n is not None and len(b) != n:
        raise ValueError(f"{what} must be {n} bytes ({2 * n} hex digits)")
    return v.lower()


class LockRef(Body):
    lock_id: str

    @field_validator("lock_id")
    @classmethod
    def _lid(cls, v: str) -> str:
        return _hex(v, 8, "lock_id")


class Login(Body):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChange(Body):
    old_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class NamedIn(Body):
    name: str = Field(min_length=1, max_length=120)
    district_id: Optional[int] = None


class StaffIn(Body):
    username: str = Field(min_length=1, max_length=120)
    role: Literal["admin", "planner", "carer", "integration"]
    full_name: str = Field(default="", max_length=200)
    password: Optional[str] = Field(default=None, max_length=1024)
    district_id: Optional[int] = None
    external_ref: Optional[str] = Field(default=None, max_length=120)


class MemberIn(Body):
    staff_id: int


class HomeIn(Body):
    citizen_ref: str = Field(min_length=1, max_length=120)
    address: str = Field(default="", max_length=300)
    district_id: int


class LockIn(LockRef):
    """A provisioned lock: its id and the master key and epoch provisioning put into it."""

    key: str = Field(description="K_L of the epoch, 64 hex digits; stored encrypted, never returned")
    epoch: int = Field(default=1, ge=1, le=0xFFFFFFFF)
    home_id: Optional[int] = None
    board: str = Field(default="esp32-devkitc", max_length=60, pattern=r"^[a-z0-9][a-z0-9._-]*$")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return _hex(v, 32, "key")


class LockPatch(Body):
    home_id: Optional[int] = None
    board: Optional[str] = Field(default=None, max_length=60, pattern=r"^[a-z0-9][a-z0-9._-]*$")


class GrantIn(Body):
    staff_id: Optional[int] = None
    group_id: Optional[int] = None
    lock_id: Optional[str] = None
    home_id: Optional[int] = None
    district_id: Optional[int] = None
    rights: int = Field(default=3, description="UNLOCK=1 | LOCK=2 | JOURNAL=4 | ADMIN=8")
    valid_from: Optional[int] = Field(default=None, ge=0, le=0xFFFFFFFF)
    valid_until: Optional[int] = Field(default=None, ge=1, le=0xFFFFFFFF)
    win_start: int = Field(default=0, ge=0, le=1440)
    win_end: int = Field(default=0, ge=0, le=1440)
    win_days: int = Field(default=0, ge=0, le=0x7F, description="bit 0 Monday .. bit 6 Sunday; 0 = always")
    reason: str = Field(default="", max_length=500)

    @field_validator("lock_id")
    @classmethod
    def _lid(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _hex(v, 8, "lock_id")


class PhoneIn(Body):
    label: str = Field(default="", max_length=120)
    staff_id: Optional[int] = Field(default=None, description="admins and planners register for someone else")


class Reason(Body):
    reason: str = Field(default="", max_length=500)


class RekeyIn(Body):
    onsite: bool = Field(default=False, description="deliver over the serial cable only, never through a phone")


class ProofIn(LockRef):
    proof: str

    @field_validator("proof")
    @classmethod
    def _p(cls, v: str) -> str:
        return _hex(v, 20, "proof")


class BundleIn(Body):
    start: Optional[int] = Field(default=None, ge=0, le=0xFFFFFFFF, description="shift start (default: now)")
    hours: Optional[float] = Field(default=None, gt=0, le=12)


class TimeTokenIn(LockRef):
    epoch: int = Field(ge=1, le=0xFFFFFFFF)
    nonce: str = Field(description="nonce_L of the lock's HELLO on this connection (16 bytes hex)")

    @field_validator("nonce")
    @classmethod
    def _n(cls, v: str) -> str:
        return _hex(v, 16, "nonce")


class FactoryResetIn(Body):
    epoch: int = Field(ge=1, le=0xFFFFFFFF)
    nonce: str = Field(description="nonce_L of the lock's HELLO on this connection (16 bytes hex)")

    @field_validator("nonce")
    @classmethod
    def _n(cls, v: str) -> str:
        return _hex(v, 16, "nonce")


class JournalIn(LockRef):
    chunk: str = Field(description="the JOURNAL_READ payload (export chunk) as hex", max_length=2 * 600)

    @field_validator("chunk")
    @classmethod
    def _c(cls, v: str) -> str:
        return _hex(v, None, "chunk")


class HelloIn(Body):
    hello: str = Field(description="the HELLO message the lock sent (hex); a hint, not authenticated",
                       max_length=256)

    @field_validator("hello")
    @classmethod
    def _h(cls, v: str) -> str:
        return _hex(v, None, "hello")


class AlarmIn(Body):
    staff_id: Optional[int] = None
    username: Optional[str] = None
    home_id: Optional[int] = None
    citizen_ref: Optional[str] = None
    minutes: int = Field(ge=1, le=24 * 60)
    reason: str = Field(min_length=1, max_length=500, description="why (the alarm case); audited")


class PlanItem(Body):
    staff_id: int
    home_id: int
    start: int = Field(ge=0, le=0xFFFFFFFF)
    end: int = Field(ge=1, le=0xFFFFFFFF)


class PlanIn(Body):
    visits: list[PlanItem] = Field(max_length=100000)
