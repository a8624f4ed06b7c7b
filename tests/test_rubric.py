"""Rubrics per suite on real TinyDB files: categories and guidelines, categories on labels, failures by category."""

from __future__ import annotations

import pytest

from agentlearn.feedback import labels, rubric
from storage.records import DEFAULT_ERROR_CATEGORIES, Label, Suite
from tests.seed import ME, SUITE


def test_a_suite_starts_with_the_default_rubric_and_its_owner_changes_it(seeded):
    assert rubric.categories(seeded, SUITE) == list(DEFAULT_ERROR_CATEGORIES)
    assert rubric.guidelines(seeded, SUITE) == ""
    rubric.update(seeded, SUITE, ["  wrong   tool ", "Wrong tool", "", "asked instead of acting"],
                  "## Usernames\nA username is **lower case**.", who=ME)
    stored = seeded.repo.get(Suite, SUITE)
    assert stored.error_categories == ["wrong tool", "asked instead of acting"]
    assert stored.guidelines.startswith("## Usernames") and stored.tools  # the rest of the card is kept
    rubric.update(seeded, SUITE, guidelines_text="", who=ME)  # None keeps the categories
    assert seeded.repo.get(Suite, SUITE).error_categories == ["wrong tool", "asked instead of acting"]
    with pytest.raises(ValueError, match="longer than 40 characters"):
        rubric.update(seeded, SUITE, ["x" * 41], who=ME)
    with pytest.raises(ValueError, match="at most 20"):
        rubric.update(seeded, SUITE, [f"c{i}" for i in range(21)], who=ME)
    with pytest.raises(ValueError, match="no suite named 'nope'"):
        rubric.update(seeded, "nope", ["a"], who=ME)


def test_a_label_carries_only_the_suites_categories_and_only_on_a_fail(seeded):
    lab = labels.submit_label(seeded, "tr0bad", "carol", "fail", categories=["wrong tool", "wrong tool"])
    assert seeded.repo.get(Label, lab.id).categories == ["wrong tool"]
    before = seeded.repo.count(Label)
    with pytest.raises(ValueError, match="unknown error category 'typo'.*its categories are: wrong tool"):
        labels.submit_label(seeded, "tr0bad", "carol", "fail", categories=["typo"])
    with pytest.raises(ValueError, match="describe a failure"):
        labels.submit_label(seeded, "tr0ok", "carol", "success", categories=["format"])
    assert seeded.repo.count(Label) == before


def test_failures_by_category_counts_people_then_the_verifier_with_zero_rows(seeded):
    # Seeded: six wrong-tool runs (tr*bad) and one run with no parseable call (trhostile), all failing.
    table = rubric.failures_by_category(seeded, SUITE).set_index("category")
    assert list(table.index) == list(DEFAULT_ERROR_CATEGORIES) + [rubric.UNCATEGORISED]
    assert table.loc["wrong tool", "from the verifier"] == 6 and table.loc["format", "failures"] == 1
    assert table.loc["invented value", "failures"] == 0  # a zero row, not a missing one
    labels.submit_label(seeded, "tr0bad", "carol", "fail", categories=["invented value", "wrong argument"])
    labels.submit_label(seeded, "tr0bad", "dave", "fail", categories=["invented value"])
    labels.submit_label(seeded, "tr2bad", "carol", "fail")  # judged, nothing ticked
    labels.submit_label(seeded, "tr4bad", "carol", "success")  # people overrule the verifier: not a failure
    table = rubric.failures_by_category(seeded, SUITE).set_index("category")
    assert table.loc["invented value", "from people"] == 1  # one run, however many people ticked it
    assert table.loc["wrong argument", "from people"] == 1
    assert table.loc[rubric.UNCATEGORISED, "from people"] == 1
    assert table.loc["wrong tool", "from the verifier"] == 3
    assert table.loc["wrong tool", "share of failures"] == pytest.approx(3 / 6)
    only = rubric.failures_by_category(seeded, trajectory_ids=["trhostile", "tr1ok"]).set_index("category")
    assert only["failures"].sum() == 1 and only.loc["format", "failures"] == 1
