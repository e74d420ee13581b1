"""Replay's error and reading a transcript to replay (a YAML transcript or a node Markdown log)."""

from __future__ import annotations

from pathlib import Path

from chanlog.errors import ChanlogError
from chanlog.model import Transcript


class ReplayError(ChanlogError):
    """A transcript cannot be replayed, or a replay cannot start (port in use, unreachable node)."""


def load_transcript(path: str | Path) -> Transcript:
    """Load a transcript file (YAML, format 1) or a node Markdown log (``.md``, imported on the fly).

    Raises :class:`~chanlog.errors.TranscriptError` / :class:`~chanlog.errors.LogImportError` naming
    ``file:line`` on bad input, :class:`ReplayError` when the file cannot be read.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".md", ".markdown"):
            from chanlog.sources.nodelog import import_file

            return import_file(path)
        from chanlog.transcript import load

        return load(path)
    except OSError as exc:
        raise ReplayError(f"cannot read: {exc.strerror or exc}", str(path)) from None
