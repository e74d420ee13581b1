"""Shared test fixtures: where the shared corpus and seeds are, and skips when they are absent."""

from __future__ import annotations

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


def need_corpus() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS}); it lives beside the repository as ../shared/corpus")


def need_seeds() -> None:
    if not SEEDS.is_dir():
        pytest.skip(f"the shared seeds are absent ({SEEDS}); they live beside the repository as ../shared/seeds")


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
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"the shared corpus is absent ({CORPUS})"))]
    return [pytest.param(p, id=corpus_id(p)) for p in logs]
