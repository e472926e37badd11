"""Typed settings from ``KEYSERVER_*`` environment variables (or keyword arguments); they fail loudly.

Required: ``KEYSERVER_DATABASE_URL`` and one of ``KEYSERVER_MASTER_KEY_FILE`` (a file
holding 32 random bytes, raw or as 64 hex digits) or ``KEYSERVER_MASTER_KEY`` (64 hex
digits). The master key encrypts lock keys at rest and never enters the database.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MASTER_KEY_LEN = 32
MAX_TICKET_LIFETIME = 43200  # protocol §2.5 MAX_UNCERTAIN_LIFETIME: a shift ticket must still open an uncertain lock


class ConfigError(Exception):
    """The server's configuration is unusable; the message says what to fix."""


class Settings(BaseSettings):
    """Everything the server is configured with. Unknown ``KEYSERVER_*`` names are not read."""

    model_config = SettingsConfigDict(env_prefix="KEYSERVER_", extra="forbid", frozen=True)

    database_url: str
    master_key_file: Path | None = None
    master_key: SecretStr | None = None
    #: lifetime of shift tickets in a bundle, seconds (at most 12 h, protocol §2.5)
    ticket_lifetime: int = 12 * 3600
    #: lifetime of a person's login session, seconds
    session_lifetime: int = 8 * 3600
    #: the municipality's time zone: gives each ticket's tz_offset for daily windows
    timezone: str = "Europe/Copenhagen"
    #: failed logins before an account is locked, and the first lockout (doubles, at most 1 h)
    login_threshold: int = 5
    login_lockout: int = 60
    #: per-client-address login attempts allowed per minute (all accounts together)
    login_per_minute: int = 30
    #: longest temporary alarm key, minutes
    alarm_max_minutes: int = 240
    #: argon2id cost (RFC 9106 second recommendation by default: t=3, 64 MiB, p=4)
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    #: TEST BENCHES ONLY: a file holding the simulated Unix time (decimal text) the server's clock
    #: follows instead of real time (:func:`keyserver.keystore.now`); unset: real time
    clock_file: Path | None = None

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        if v.startswith("postgresql://") or v.startswith("postgres://"):
            v = "postgresql+psycopg://" + v.split("://", 1)[1]
        return v

    @field_validator("ticket_lifetime")
    @classmethod
    def _lifetime(cls, v: int) -> int:
        if not 60 <= v <= MAX_TICKET_LIFETIME:
            raise ValueError(f"must be between 60 and {MAX_TICKET_LIFETIME} seconds (protocol §2.5)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v

    @field_validator("clock_file", mode="before")
    @classmethod
    def _clock(cls, v):
        return None if isinstance(v, str) and not v.strip() else v  # an empty variable means unset

    @field_validator("argon2_memory_kib")
    @classmethod
    def _mem(cls, v: int) -> int:
        if v < 8192:
            raise ValueError("argon2id needs at least 8192 KiB to be memory-hard")
        return v

    @model_validator(mode="after")
    def _one_key_source(self) -> "Settings":
        if (self.master_key_file is None) == (self.master_key is None):
            raise ValueError("set exactly one of KEYSERVER_MASTER_KEY_FILE or KEYSERVER_MASTER_KEY")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def load_master_key(self) -> bytes:
        """The 32-byte master key; ConfigError when missing, malformed or readable by others."""
        if self.master_key is not None:
            return _parse_key(self.master_key.get_secret_value().strip().encode(), "KEYSERVER_MASTER_KEY")
        path = self.master_key_file
        try:
            st = path.stat()
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read master key file {path}: {e.strerror}") from None
        if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"master key file {path} is readable by others; chmod 600 it")
        return _parse_key(raw, str(path))


def _parse_key(raw: bytes, where: str) -> bytes:
    if len(raw) == MASTER_KEY_LEN:
        return raw
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != MASTER_KEY_LEN:
        raise ConfigError(f"{where}: a master key is 32 bytes (raw, or 64 hex digits)")
    return key


def load_settings(**overrides) -> Settings:
    """Settings from the environment and ``overrides``; ConfigError naming every bad or missing field."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"{'KEYSERVER_' + str(err['loc'][0]).upper() if err['loc'] else 'settings'}: {err['msg']}"
            for err in e.errors())
        raise ConfigError(problems) from None
