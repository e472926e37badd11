"""The typed error of the protocol edge: a numeric code from the one table, plus a detail."""

from __future__ import annotations

from .codes import Err


class ProtocolError(Exception):
    """A protocol failure: ``code`` from :class:`~lockproto.codes.Err` and a numeric ``detail``.

    ``str()`` gives ``"NAME: description (detail n)"``. The detail's meaning depends
    on the code (§4.7): seconds left for ``LOCKED_OUT``, the current epoch for
    ``WRONG_EPOCH``, ``min << 8 | max`` for ``UNSUPPORTED_VERSION``, the first bad
    sequence number for a broken journal chain; otherwise 0.
    """

    code: Err
    detail: int
    #: who says so: ``"local"`` this side's own check failed (a malformed, forged or
    #: misdirected message: the peer said nothing trustworthy); ``"lock"`` the lock's status
    #: in a RESULT whose MAC verified (the lock really refused); ``"claim"`` the code of an
    #: ERROR frame, which carries no MAC (protocol §4.7) and may come from anyone on the air
    origin: str

    def __init__(self, code: int, detail: int = 0, origin: str = "local") -> None:
        self.code = Err(code)
        self.detail = int(detail)
        self.origin = origin
        super().__init__(self.code, self.detail)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.code.describe()} (detail {self.detail})"

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.name}, {self.detail})"
