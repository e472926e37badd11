"""SQLAlchemy 2 models. Times are Unix seconds (UTC) as integers, as on the wire (protocol conventions).

Secrets never appear in plain: lock keys are AES-GCM blobs (:mod:`keyserver.vault`),
passwords are argon2id hashes, bearer tokens are stored as SHA-256 digests.
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import (
    BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("admin", "planner", "carer", "integration")


class Base(DeclarativeBase):
    pass


class District(Base):
    __tablename__ = "districts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    district_id: Mapped[Optional[int]] = mapped_column(ForeignKey("districts.id"))


class Staff(Base):
    """A person (or an integration account). ``id`` is the protocol's ``user_id``."""

    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    external_ref: Mapped[Optional[str]] = mapped_column(String(120), unique=True)
    district_id: Mapped[Optional[int]] = mapped_column(ForeignKey("districts.id"))
    password_hash: Mapped[Optional[str]] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    revoked_at: Mapped[Optional[int]] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[int] = mapped_column(BigInteger)


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True)


class Home(Base):
    __tablename__ = "homes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_ref: Mapped[str] = mapped_column(String(120), unique=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id"))


class Lock(Base):
    """A door unit. ``epoch`` is the epoch the lock holds as far as the server knows (proved)."""

    __tablename__ = "locks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_id: Mapped[str] = mapped_column(String(16), unique=True)  # 8 bytes, hex
    home_id: Mapped[Optional[int]] = mapped_column(ForeignKey("homes.id"))
    board: Mapped[str] = mapped_column(String(60), default="esp32-devkitc")
    epoch: Mapped[int] = mapped_column(BigInteger)
    genesis_epoch: Mapped[int] = mapped_column(BigInteger)
    deny_version: Mapped[int] = mapped_column(BigInteger, default=1)
    # journal: the contiguous, verified prefix the server holds
    journal_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    journal_chain: Mapped[Optional[str]] = mapped_column(String(16))
    journal_epoch: Mapped[int] = mapped_column(BigInteger)
    # unauthenticated hints from phones (HELLO / advertisement)
    seen_at: Mapped[Optional[int]] = mapped_column(BigInteger)
    seen_flags: Mapped[Optional[int]] = mapped_column(Integer)
    seen_deny_version: Mapped[Optional[int]] = mapped_column(BigInteger)
    seen_journal_head: Mapped[Optional[int]] = mapped_column(BigInteger)
    seen_epoch: Mapped[Optional[int]] = mapped_column(BigInteger)
    seen_battery_pct: Mapped[Optional[int]] = mapped_column(Integer)
    seen_battery_mv: Mapped[Optional[int]] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger)


class LockKey(Base):
    """One epoch's master key ``K_L`` sealed by the vault. ``state``: active, pending, retired."""

    __tablename__ = "lock_keys"
    __table_args__ = (UniqueConstraint("lock_pk", "epoch"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_pk: Mapped[int] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))
    sealed_master: Mapped[Optional[bytes]] = mapped_column(LargeBinary)  # None once destroyed
    sealed_jm: Mapped[Optional[bytes]] = mapped_column(LargeBinary)      # journal-MAC key, kept until read past
    created_at: Mapped[int] = mapped_column(BigInteger)
    destroyed_at: Mapped[Optional[int]] = mapped_column(BigInteger)


class Rekey(Base):
    """The re-key state machine of one lock: pending -> done (proof) or cancelled."""

    __tablename__ = "rekeys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_pk: Mapped[int] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"), index=True)
    old_epoch: Mapped[int] = mapped_column(BigInteger)
    new_epoch: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(12))
    onsite: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str] = mapped_column(String(120))  # REKEY args, hex: wrapped under K_wr(old), not secret
    created_at: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("staff.id"))
    finished_at: Mapped[Optional[int]] = mapped_column(BigInteger)


class Token(Base):
    """A bearer token: a person's login session, a phone, or an integration. Only its SHA-256 is stored."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(12))  # session | phone | integration
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    phone_id: Mapped[Optional[int]] = mapped_column(ForeignKey("phones.id", ondelete="CASCADE"))
    expires_at: Mapped[Optional[int]] = mapped_column(BigInteger)
    revoked_at: Mapped[Optional[int]] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Phone(Base):
    __tablename__ = "phones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    revoked_at: Mapped[Optional[int]] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[Optional[int]] = mapped_column(BigInteger)


class Grant(Base):
    """Access: a person or a group, to a lock, a home or a whole district, in a validity span and window.

    ``win_days`` is the weekly part (bit 0 Monday … bit 6 Sunday), ``win_start``/``win_end``
    the daily part in minutes of the local day (protocol §2.1). ``kind`` is ``regular`` or ``alarm``.
    """

    __tablename__ = "grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[Optional[int]] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    lock_pk: Mapped[Optional[int]] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"))
    home_id: Mapped[Optional[int]] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    district_id: Mapped[Optional[int]] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    rights: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[Optional[int]] = mapped_column(BigInteger)
    win_start: Mapped[int] = mapped_column(Integer, default=0)
    win_end: Mapped[int] = mapped_column(Integer, default=0)
    win_days: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(12), default="regular")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[Optional[int]] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[Optional[int]] = mapped_column(BigInteger)


class Ticket(Base):
    """Every ticket ever issued (the audit of keys handed out). ``id`` is the protocol's ``ticket_id``.

    ``K_T`` is never stored: it is recomputed from the lock key only when issued.
    """

    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_staff_after", "staff_id", "not_after"),
                      Index("ix_tickets_lock_after", "lock_pk", "not_after"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_pk: Mapped[int] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"))
    epoch: Mapped[int] = mapped_column(BigInteger)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    phone_id: Mapped[Optional[int]] = mapped_column(ForeignKey("phones.id", ondelete="CASCADE"), index=True)
    grant_id: Mapped[Optional[int]] = mapped_column(ForeignKey("grants.id", ondelete="SET NULL"), index=True)
    not_before: Mapped[int] = mapped_column(BigInteger)
    not_after: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    rights: Mapped[int] = mapped_column(Integer)
    record: Mapped[str] = mapped_column(String(82), default="")  # the 41 ticket bytes, hex
    revoked_at: Mapped[Optional[int]] = mapped_column(BigInteger)


class DenyEntry(Base):
    """One entry of a lock's deny list (protocol §5.2); ``kind`` 1 ticket id, 2 user id."""

    __tablename__ = "deny_entries"
    __table_args__ = (UniqueConstraint("lock_pk", "kind", "ident"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_pk: Mapped[int] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"), index=True)
    kind: Mapped[int] = mapped_column(Integer)
    ident: Mapped[int] = mapped_column(BigInteger)
    expires: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(BigInteger)  # the deny-list version that first carried it


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(120), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON, never a key


class JournalRecord(Base):
    __tablename__ = "journal_records"
    __table_args__ = (UniqueConstraint("lock_pk", "seq"), Index("ix_journal_lock_time", "lock_pk", "time"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_pk: Mapped[int] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[int] = mapped_column(Integer)
    flags: Mapped[int] = mapped_column(Integer)
    arg16: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(BigInteger)
    ticket_id: Mapped[int] = mapped_column(BigInteger)
    arg: Mapped[int] = mapped_column(BigInteger)
    chain: Mapped[str] = mapped_column(String(16))
    ingested_at: Mapped[int] = mapped_column(BigInteger)


class JournalGap(Base):
    """Records the server will never see: ``kind`` overflow (explained by an OVERFLOW record) or gap."""

    __tablename__ = "journal_gaps"
    __table_args__ = (UniqueConstraint("lock_pk", "from_seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_pk: Mapped[int] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"), index=True)
    from_seq: Mapped[int] = mapped_column(BigInteger)
    to_seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))
    detected_at: Mapped[int] = mapped_column(BigInteger)


class BatterySample(Base):
    __tablename__ = "battery_samples"
    __table_args__ = (Index("ix_battery_lock_at", "lock_pk", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_pk: Mapped[int] = mapped_column(ForeignKey("locks.id", ondelete="CASCADE"))
    at: Mapped[int] = mapped_column(BigInteger)
    mv: Mapped[int] = mapped_column(Integer)
    pct: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(12))  # journal (authenticated) | hello (hint)
    # the motor sag the lock measured (a BATTERY record's bits 24..31, mV); None: not measured yet, or a HELLO
    sag_mv: Mapped[Optional[int]] = mapped_column(Integer)


class PlannedVisit(Base):
    __tablename__ = "planned_visits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    home_id: Mapped[int] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"), index=True)
    start: Mapped[int] = mapped_column(BigInteger)
    end: Mapped[int] = mapped_column(BigInteger)
