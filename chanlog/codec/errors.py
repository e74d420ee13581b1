"""The codec's error: one exception for call data, return values and contract code."""

from __future__ import annotations

from chanlog.errors import ChanlogError

#: Longest path written out in full in an error message (deeper ones show their ends).
_PATH_SHOWN = 10


class CodecError(ChanlogError):
    """A contract value or contract code does not decode (or encode).

    ``offset`` is the byte offset of the fault in the bytes being read (``None`` when encoding), ``path`` the
    way into the value (``["call data", "arg 2", "[3]"]``). ``str(error)`` reads
    ``call data -> arg 2 -> [3]: at byte 17: unknown FATE tag 0xe7``.
    """

    def __init__(self, message: str, offset: int | None = None, path: list[str] | tuple[str, ...] = ()) -> None:
        self.reason = message
        self.offset = offset
        self.path = list(path)
        text = f"at byte {offset}: {message}" if offset is not None else message
        shown = self.path if len(self.path) <= _PATH_SHOWN else \
            [*self.path[:3], f"({len(self.path) - 6} more)", *self.path[-3:]]
        where = " -> ".join(shown) or None
        super().__init__(text, where)

    def within(self, segment: str) -> CodecError:
        """The same error one level up: ``segment`` put in front of the path."""
        return CodecError(self.reason, self.offset, [segment, *self.path])
