"""The exception hierarchy: one root, :class:`ChanlogError`, for every domain error.

Each error carries where it happened (``where``: ``file:line``, a frame number, or a decode path) so
that the CLI can print one line without a traceback.
"""

from __future__ import annotations

import re


class ChanlogError(Exception):
    """Root of every error chanlog raises on bad input.

    ``where`` (optional) names the place: ``"log.md:12"``, ``"frame 7"``, ``"signed_tx v1 -> transaction"``.
    ``str(error)`` is ``"<where>: <message>"`` when a place is known, else the message.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class TranscriptError(ChanlogError):
    """A transcript file is malformed (YAML syntax, unknown version, missing or mistyped key)."""


class LogImportError(ChanlogError):
    """A Markdown channel log cannot be parsed (unknown heading, broken JSON block, empty file)."""


class RenderError(ChanlogError):
    """A template is missing or fails (undefined variable, syntax error)."""



#: Characters a terminal acts on rather than shows: C0 controls (ESC starts ANSI/OSC sequences), DEL, C1
#: controls (0x9b is a one-byte CSI), zero-width and bidirectional marks and overrides (they reorder a line),
#: line/paragraph separators, the BOM and interlinear annotation marks. Tab is kept.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every character a terminal would act on (:data:`_UNSAFE`) written as an escape
    (``\\x1b``, ``\\n``, ``\\u202e``), so that printing it cannot move the cursor, change colours, set the
    window title or reorder the line; newlines kept when ``keep_newlines``. Linear in ``len(text)``."""
    if keep_newlines:
        return _UNSAFE.sub(lambda m: m.group() if m.group() == "\n" else _escape(m.group()), text)
    return _UNSAFE.sub(lambda m: _escape(m.group()), text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return {"\n": "\\n", "\r": "\\r"}.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
