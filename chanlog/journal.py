"""Compatibility: the journal moved to :mod:`chanlog.record.journal` (format, writer, reader) and
:mod:`chanlog.record.writer` (transcripts built from journals). Import from there."""

from chanlog.record.journal import *  # noqa: F403
from chanlog.record.journal import JournalInfo, JournalWriter, find_unfinished, journal_paths, scan  # noqa: F401
from chanlog.record.writer import (  # noqa: F401
    YAML_CHUNK,
    iter_events,
    load_journal,
    record_to_event,
    transcript_head,
    write_transcript,
    yaml_pieces,
)
