"""Lock keys in and out of the vault, the audit log, and small shared helpers of the domain layer."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time as _time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lockproto import LockKeys
from lockproto.crypto import LABELS, derive

from .errors import ApiError, Conflict, NotFound
from .models import AuditEntry, Lock, LockKey
from .vault import Vault


log = logging.getLogger("keyserver")


def now() -> int:
    """The server clock, Unix seconds (one place, so tests and the bench can reason about it).

    Real time, unless a test bench set ``KEYSERVER_CLOCK_FILE`` (:func:`use_clock`): then the
    simulated time in that file, or :class:`ClockUnavailable` (503) when the file is unusable.
    """
    clock = _clock
    return int(_time.time()) if clock is None else clock.read()


class ClockUnavailable(ApiError):
    """The simulated clock's file is missing or unparsable: the server answers 503 instead of using real time."""

    status, reason = 503, "clock_unavailable"


_TIME_TEXT = re.compile(r"\s*(\d{1,10})(?:\.\d*)?\s*")


class FileClock:
    """TEST BENCHES ONLY: a clock read from a file holding a Unix time as decimal text (``1767250800``;
    a fraction is dropped).

    The file is re-read when its mtime, size or inode changes and cached otherwise; a writer
    should replace it atomically (write a temporary file, then rename it over). Time never
    goes backwards: the largest value seen is the time, a smaller one is ignored (and logged).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path).absolute()  # as /healthz shows it: a bench compares it with its own path
        self._key: tuple | None = None
        self._t: int | None = None
        self._lock = threading.Lock()

    def read(self) -> int:
        """The simulated time; ClockUnavailable when the file cannot be read or parsed."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise ClockUnavailable(f"simulated clock file {self.path}: {e.strerror}") from None
        key = (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)
        with self._lock:
            if key != self._key:
                t = self._parse()
                if self._t is not None and t < self._t:
                    log.warning("simulated clock file %s went back from %d to %d; keeping %d",
                                self.path, self._t, t, self._t)
                self._t = t if self._t is None else max(self._t, t)
                self._key = key  # only after a good read: a bad file is re-read (and refused) every time
            return self._t

    def _parse(self) -> int:
        try:
            text = self.path.read_bytes()[:64].decode("ascii")
        except OSError as e:
            raise ClockUnavailable(f"simulated clock file {self.path}: {e.strerror}") from None
        except UnicodeDecodeError:
            text = "?"
        m = _TIME_TEXT.fullmatch(text)
        t = int(m.group(1)) if m else 0
        if not 0 < t < 1 << 32:
            raise ClockUnavailable(f"simulated clock file {self.path} does not hold a Unix time as decimal text "
                                   f"(it holds {text[:24]!r})")
        return t


# the process's clock: None is real time; set (or cleared) by use_clock when an app or a CLI command starts
_clock: FileClock | None = None


def use_clock(path: Path | None) -> FileClock | None:
    """Make :func:`now` follow the simulated clock in ``path``, or real time for None.

    The file is read at once: a missing or unparsable one raises ConfigError, so a
    misconfigured bench fails at start-up rather than running on real time.
    """
    from .settings import ConfigError

    global _clock
    if path is None:
        _clock = None
        return None
    clock = FileClock(path)
    try:
        clock.read()
    except ClockUnavailable as e:
        raise ConfigError(f"KEYSERVER_CLOCK_FILE: {e.message}") from None
    _clock = clock
    return clock


def audit(s: Session, action: str, subject: str = "", actor_id: int | None = None, at: int | None = None,
          **detail) -> None:
    """Append to the audit log in the caller's transaction (so it commits or vanishes with the change)."""
    s.add(AuditEntry(at=at or now(), actor_id=actor_id, action=action, subject=subject,
                     detail=json.dumps(detail, sort_keys=True, default=str)))


def lock_id_bytes(lock_id: str) -> bytes:
    from .errors import Invalid

    try:
        b = bytes.fromhex(lock_id)
    except ValueError:
        b = b""
    if len(b) != 8:
        raise Invalid(f"lock id {lock_id!r} is not 16 hex digits")
    return b


def get_lock(s: Session, lock_id: str, for_update: bool = False) -> Lock:
    lock_id_bytes(lock_id)
    q = select(Lock).where(Lock.lock_id == lock_id.lower())
    if for_update:
        q = q.with_for_update()
    lock = s.execute(q).unique().scalar_one_or_none()
    if lock is None:
        raise NotFound(f"no lock {lock_id}")
    return lock


def store_key(s: Session, vault: Vault, lock: Lock, epoch: int, master: bytes, state: str, at: int) -> LockKey:
    """Seal ``master`` (and its journal-MAC key, kept longer) for ``lock``/``epoch``."""
    lid = bytes.fromhex(lock.lock_id)
    jm = derive(master, LABELS["jm"], lid, epoch)
    row = LockKey(lock_pk=lock.id, epoch=epoch, state=state, created_at=at,
                  sealed_master=vault.seal(master, lid, epoch, "master"),
                  sealed_jm=vault.seal(jm, lid, epoch, "journal-mac"))
    s.add(row)
    return row


class KeyRing:
    """The keys of one lock the server still holds, by epoch, opened from the vault on demand."""

    def __init__(self, s: Session | None, vault: Vault, lock: Lock, rows: list[LockKey] | None = None) -> None:
        self.lock = lock
        self.lid = bytes.fromhex(lock.lock_id)
        if rows is None:
            rows = list(s.execute(select(LockKey).where(LockKey.lock_pk == lock.id)).scalars())
        self.rows = {r.epoch: r for r in rows}
        self._vault = vault
        self._cache: dict[int, LockKeys] = {}

    def full(self, epoch: int) -> LockKeys:
        """Every purpose key of ``epoch``; KeyError when the master key of that epoch is gone or unknown."""
        if epoch not in self._cache:
            row = self.rows.get(epoch)
            if row is None or row.sealed_master is None:
                raise KeyError(epoch)
            self._cache[epoch] = LockKeys.from_master(
                self._vault.open(row.sealed_master, self.lid, epoch, "master"), self.lid, epoch)
        return self._cache[epoch]

    def journal(self, epoch: int) -> LockKeys:
        """Keys good enough to verify the journal chain of ``epoch`` (only ``jm`` once the master is destroyed)."""
        try:
            return self.full(epoch)
        except KeyError:
            row = self.rows.get(epoch)
            if row is None or row.sealed_jm is None:
                raise
            jm = self._vault.open(row.sealed_jm, self.lid, epoch, "journal-mac")
            return LockKeys(self.lid, epoch, tk=b"", jm=jm, je=b"", wr=b"", sv=b"")

    def state(self, epoch: int) -> str | None:
        row = self.rows.get(epoch)
        return row.state if row else None

    def active(self) -> LockKeys:
        try:
            return self.full(self.lock.epoch)
        except KeyError:
            raise Conflict(f"lock {self.lock.lock_id} has no usable key for epoch {self.lock.epoch}") from None
