"""The exception hierarchy: one root, :class:`ChanlogError`, for every domain error.

Each error carries where it happened (``where``: ``file:line``, a frame number, or a decode path) so
that the CLI can print one line without a traceback.
"""

from __future__ import annotations


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
