"""Desktop tools and client library that talk to a lock directly: provision, unlock,
collect journals, re-key and factory-reset, over the serial cable (pyserial), BLE
(bleak) or the simulator. ``lockctl`` is the command line; :class:`LockClient` the
library it is built on."""

from .client import LockClient, LockError
from .transport import SerialTransport, Transport, TransportError

__all__ = ["LockClient", "LockError", "SerialTransport", "Transport", "TransportError"]
