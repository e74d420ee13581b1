"""The tests' own helpers: one skip reason style for whatever is missing."""

from __future__ import annotations

from conftest import REPO, SEEDS, absent


def test_a_missing_folder_is_named_with_where_it_must_be() -> None:
    assert absent("the shared seeds", SEEDS) == (
        f"missing the shared seeds: expected at ../shared/seeds beside the repository ({SEEDS})")
    example = REPO / "transcripts" / "init_per_group.yaml"
    assert absent("the example transcript", example) == (
        f"missing the example transcript: expected at transcripts/init_per_group.yaml in the repository ({example})")
