"""BLE advertisement of a lock (§3.3): what any passing phone can read without a session."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

from .codes import ADV_COMPANY_ID, SERVICE_UUID, Err, Flag
from .errors import ProtocolError

ADV_FORMAT = 1


def _ad(kind: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, kind]) + data


def parse_ad(payload: bytes) -> list[tuple[int, bytes]]:
    """Split advertising data into (AD type, data) pairs; MALFORMED on a truncated structure."""
    out, i = [], 0
    while i < len(payload):
        n = payload[i]
        if n == 0:
            break
        if i + 1 + n > len(payload):
            raise ProtocolError(Err.MALFORMED)
        out.append((payload[i + 1], bytes(payload[i + 2:i + 1 + n])))
        i += 1 + n
    return out


@dataclass(frozen=True)
class Advert:
    """The manufacturer data a lock advertises: identity, battery and flags (not authenticated)."""

    lock_id: bytes
    battery_pct: int
    flags: int

    @property
    def flag_set(self) -> Flag:
        return Flag(self.flags)

    def encode(self) -> bytes:
        mfr = struct.pack("<HB", ADV_COMPANY_ID, ADV_FORMAT) + self.lock_id + bytes([self.battery_pct, self.flags])
        return _ad(0x01, b"\x06") + _ad(0xFF, mfr)

    @classmethod
    def decode(cls, payload: bytes) -> "Advert":
        """Find our manufacturer data in an advertising payload; MALFORMED if absent or wrong."""
        for kind, data in parse_ad(bytes(payload)):
            if kind == 0xFF and len(data) >= 3 and struct.unpack("<H", data[:2])[0] == ADV_COMPANY_ID:
                if data[2] != ADV_FORMAT:
                    raise ProtocolError(Err.UNSUPPORTED_VERSION, (ADV_FORMAT << 8) | ADV_FORMAT)
                if len(data) != 13:
                    raise ProtocolError(Err.MALFORMED)
                return cls(lock_id=data[3:11], battery_pct=data[11], flags=data[12])
        raise ProtocolError(Err.MALFORMED)


def scan_response() -> bytes:
    """The scan response: the service UUID (little-endian, AD 0x07) and the short name "LK"."""
    return _ad(0x07, uuid.UUID(SERVICE_UUID).bytes[::-1]) + _ad(0x08, b"LK")
