"""Shared test fixtures: where the shared corpus and seeds are, and skips when they are absent.

Every skip for something missing says it one way (:func:`absent`): what is missing, where it must be relative
to the repository, and that place as an absolute path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
SEEDS = SHARED / "seeds"
EXAMPLE = REPO / "transcripts" / "init_per_group.yaml"


def corpus_logs() -> list[Path]:
    """Every Markdown log of ../shared/corpus (empty when the folder is absent)."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*.md") if p.name != "README.md")


def corpus_id(path: Path) -> str:
    return str(path.relative_to(CORPUS))


def absent(what: str, path: Path) -> str:
    """The one skip reason for a missing folder or file: ``"missing the shared corpus: expected at
    ../shared/corpus beside the repository (/abs/shared/corpus)"``."""
    where = os.path.relpath(path, REPO)
    place = "beside the repository" if where.startswith("..") else "in the repository"
    return f"missing {what}: expected at {where} {place} ({path})"


def need(what: str, path: Path) -> Path:
    """``path`` when it exists, else skip the calling test with :func:`absent`'s reason."""
    if not path.exists():
        pytest.skip(absent(what, path))
    return path


def need_corpus() -> None:
    need("the shared corpus", CORPUS)


def need_seeds() -> None:
    need("the shared seeds", SEEDS)


def need_example() -> None:
    need("the example transcript", EXAMPLE)


@pytest.fixture
def corpus() -> Path:
    """The corpus folder; skips the test when it is absent."""
    need_corpus()
    return CORPUS


@pytest.fixture
def seeds() -> Path:
    """The seeds folder; skips the test when it is absent."""
    need_seeds()
    return SEEDS


def corpus_params() -> list:
    """``pytest.param`` per corpus log; one skipped param naming the reason when the corpus is absent."""
    logs = corpus_logs()
    if not logs:
        return [pytest.param(None, marks=pytest.mark.skip(reason=absent("the shared corpus", CORPUS)))]
    return [pytest.param(p, id=corpus_id(p)) for p in logs]


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch):
    """A :class:`faults.Disk` in place of every journal's ``os.write`` and ``posix_fallocate``, retried at once
    when it fails. Journals are written record by record with ``write`` (``MAP_CHUNK`` 0: the path on which a
    filling disk shows at each record); the mapped appends' reservations fail the same way
    (``test_journal``, mapped appends)."""
    from faults import Disk

    from chanlog.record import journal as jmod
    from chanlog.record.journal import JournalWriter

    d = Disk()
    monkeypatch.setattr(JournalWriter, "os_write", staticmethod(d))
    monkeypatch.setattr(JournalWriter, "os_fallocate", staticmethod(d.fallocate))
    monkeypatch.setattr(jmod, "MAP_CHUNK", 0)
    monkeypatch.setattr(jmod, "RETRY_SECONDS", 0.0)
    return d


# -- parallel runs (pytest -n N, pytest-xdist) -----------------------------------------------------------

#: Tests that share a module fixture too costly to build in every worker (the SDK playing every corpus log,
#: Mermaid checking every diagram, Chromium opening the rendered site): with ``-n N`` each of these runs as one
#: unit in one worker, first (the largest units are handed out first), while the other workers take the rest
#: one test at a time. (pytest-xdist's ``--dist loadgroup`` would do this from marks, but on pytest 9.2 it
#: silently stops grouping: pytest-dev/pytest-xdist#1386.)
XDIST_UNITS = (
    "tests/test_sdk_e2e.py::test_sdk_channel_plays_corpus_log_to_the_recorded_end",
    "tests/test_mermaid.py",
    "tests/test_browser.py",
)


def xdist_unit(nodeid: str) -> str:
    """The unit a test is scheduled in: its :data:`XDIST_UNITS` entry, else the test alone."""
    for unit in XDIST_UNITS:
        if nodeid == unit or nodeid.startswith((unit + "::", unit + "[")):
            return unit
    return nodeid


try:
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pragma: no cover - without pytest-xdist the tests run in one process
    LoadScopeScheduling = None
else:

    class _UnitScheduling(LoadScopeScheduling):
        """xdist's ``load`` distribution, except that the tests of one :data:`XDIST_UNITS` entry stay together."""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001 - xdist's Producer
        """With ``-n N`` and the default ``--dist load``: :class:`_UnitScheduling`; other modes as asked."""
        if config.getvalue("dist") != "load":
            return None
        return _UnitScheduling(config, log)
