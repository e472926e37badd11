"""The typed error of the protocol edge: a numeric code from the one table, plus detail."""

from __future__ import annotations

from .codes import Err


class ProtocolError(Exception):
    """A protocol failure with a code from :class:`~lockproto.codes.Err` and a numeric detail."""

    def __init__(self, code: int, detail: int = 0):
        self.code = Err(code)
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.code.describe()}"
        return f"{text} (detail {self.detail})" if self.detail else text
