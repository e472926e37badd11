# BLE advertising payloads (docs/protocol.md §3.3), as raw AD structures for
# aioble.advertise(adv_data=..., resp_data=...). Not authenticated: hints only.
import struct

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# protocol numbers (docs/protocol.md; the same as lockcodes, tests/test_fw_consts.py)
_ADV_FORMAT = const(1)

_AD_FLAGS = const(0x01)
_AD_UUID128_ALL = const(0x07)
_AD_SHORT_NAME = const(0x08)
_AD_MANUFACTURER = const(0xFF)
_COMPANY = const(0xFFFF)
_GENERAL_DISC_NO_BREDR = const(0x06)
# service 65b3434c-caee-4cff-b110-b8094531587c, little-endian as AD 0x07 carries it
_SERVICE_LE = bytes(reversed(b"\x65\xb3\x43\x4c\xca\xee\x4c\xff\xb1\x10\xb8\x09\x45\x31\x58\x7c"))


def _ad(kind, data):
    return bytes((len(data) + 1, kind)) + data


def advertisement(lock_id, battery_pct, flags):
    # Flags AD + manufacturer data: company (LE), format, lock id, battery %, flags.
    mfr = struct.pack("<H", _COMPANY) + bytes((_ADV_FORMAT,)) + bytes(lock_id) + bytes((battery_pct, flags))
    return _ad(_AD_FLAGS, bytes((_GENERAL_DISC_NO_BREDR,))) + _ad(_AD_MANUFACTURER, mfr)


def scan_response():
    return _ad(_AD_UUID128_ALL, _SERVICE_LE) + _ad(_AD_SHORT_NAME, b"LK")
