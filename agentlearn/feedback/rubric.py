"""Rubrics per suite: the error categories a failure can be ticked as, and the owner's guidelines.

A suite's categories (Suite.error_categories, a default list until its owner changes it) are what a
labeler ticks on a failed run (Label.categories). Guidelines are Markdown written by a reviewer or admin;
they are the one Markdown the dashboard renders, because only those roles can write it.

`failures_by_category` breaks the failed runs down by category for Overview and Evaluate. A failure a
person labeled counts under the categories that person ticked (the latest label of each annotator); a
failure nobody labeled counts under the category its verifier verdict implies (no call: format; another
tool: wrong tool; an argument missing or wrong), so an evaluation that nobody labeled still has a
breakdown. Which runs failed is decided by verdicts, as everywhere else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from agentlearn import policy, verdicts
from agentlearn.accounts import Identity
from agentlearn.feedback.index import mask_of, trajectory_index
from agentlearn.workspace import Workspace
from storage.records import DEFAULT_ERROR_CATEGORIES, Label, Resolution, Suite, Task, Trajectory

MAX_CATEGORIES = 20
MAX_CATEGORY_CHARS = 40
MAX_GUIDELINES_CHARS = 20_000
UNCATEGORISED = "(no category ticked)"
COLUMNS = ("category", "failures", "from people", "from the verifier", "share of failures")


def categories(ws: Workspace, suite: str) -> list[str]:
    """The suite's error categories (the default list for a suite without a card)."""
    found = ws.repo.get(Suite, suite) if suite else None
    return list(found.error_categories) if found is not None else list(DEFAULT_ERROR_CATEGORIES)


def guidelines(ws: Workspace, suite: str) -> str:
    """The suite's labeling guidelines (Markdown; '' when none were written)."""
    found = ws.repo.get(Suite, suite) if suite else None
    return found.guidelines if found is not None else ""


def clean_categories(values: Iterable[str]) -> list[str]:
    """Categories stripped, blank ones dropped, duplicates (ignoring case) removed; ValueError if too many or long."""
    out: list[str] = []
    for raw in values:
        name = " ".join(str(raw).split())
        if not name or name.casefold() in {c.casefold() for c in out}:
            continue
        if len(name) > MAX_CATEGORY_CHARS:
            raise ValueError(f"category {name[:50]!r} is longer than {MAX_CATEGORY_CHARS} characters")
        out.append(name)
    if len(out) > MAX_CATEGORIES:
        raise ValueError(f"{len(out)} categories: a rubric holds at most {MAX_CATEGORIES}")
    return out


def update(ws: Workspace, suite: str, error_categories: Sequence[str] | None = None,
           guidelines_text: str | None = None, *, who: Identity) -> Suite:
    """Change a suite's categories and/or guidelines (None keeps them); labels already stored keep theirs.

    `who` needs the edit_suite action (agentlearn.policy).
    """
    policy.require(ws.repo, who, "edit_suite")
    if ws.repo.get(Suite, suite) is None:
        raise ValueError(f"no suite named {suite!r}")
    change: dict = {}
    if error_categories is not None:
        change["error_categories"] = clean_categories(error_categories)
    if guidelines_text is not None:
        if len(guidelines_text) > MAX_GUIDELINES_CHARS:
            raise ValueError(f"guidelines are {len(guidelines_text):,} characters; at most {MAX_GUIDELINES_CHARS:,}")
        change["guidelines"] = guidelines_text.strip()
    return ws.repo.update(Suite, suite, lambda s: s.model_copy(update=change))


def check_label_categories(ws: Workspace, suite: str, ticked: Sequence[str]) -> list[str]:
    """The ticked categories if each is one of the suite's; ValueError naming the unknown ones."""
    known = categories(ws, suite)
    unknown = [c for c in ticked if c not in known]
    if unknown:
        raise ValueError(f"unknown error categor{'ies' if len(unknown) > 1 else 'y'} {', '.join(map(repr, unknown))} "
                         f"for suite {suite!r}; its categories are: {', '.join(known)}")
    return list(dict.fromkeys(ticked))


def failures_by_category(ws: Workspace, suite: str = "", trajectory_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Failed runs per error category (COLUMNS); every category of the suite has a row, zero included.

    A run with several ticked categories counts once under each, so the counts can add up to more
    than the number of failures; `share of failures` is each count over the number of failed runs.
    Runs people judged count under what they ticked; the others under the category the verifier's verdict
    implies, kept in the trajectory index. Over the whole store the table is kept until runs, labels,
    resolutions or suites change (Overview draws it on every visit: at 1M runs it takes 0.5 s to count).
    """
    if trajectory_ids is None:
        return ws.kept(("failures_by_category", suite), (Trajectory, Label, Resolution, Suite, Task),
                       lambda: _failures(ws, suite, None)).copy()
    return _failures(ws, suite, trajectory_ids)


def _failures(ws: Workspace, suite: str, trajectory_ids: Sequence[str] | None) -> pd.DataFrame:
    idx = trajectory_index(ws)
    wanted = mask_of(idx, trajectory_ids) if trajectory_ids is not None else (idx.suite == suite) if suite else None
    judge = verdicts.judge(ws)
    people, failed = Counter(), 0
    judged = np.zeros(len(idx), dtype=bool)
    for tid in judge.judged():
        n = idx.position.get(tid)
        if n is None or (wanted is not None and not wanted[n]):
            continue
        judged[n] = True
        if judge.people_succeeded(tid) is False:
            failed += 1
            people.update(_ticked(judge.labels.get(tid, [])) or [UNCATEGORISED])
    # The others as the verifier judged them: its category was worked out when the run entered the index.
    by_verifier = (idx.verifier == 0) & ~judged & (wanted if wanted is not None else True)
    machine = Counter({c or UNCATEGORISED: int(n) for c, n in
                       zip(*np.unique(idx.category[by_verifier].astype(str), return_counts=True), strict=True)})
    failed += int(by_verifier.sum())
    names = categories(ws, suite) if suite else list(DEFAULT_ERROR_CATEGORIES)
    names += [c for c in list(people) + list(machine) if c not in names and c != UNCATEGORISED]
    names.append(UNCATEGORISED)
    rows = [{"category": c, "failures": people[c] + machine[c], "from people": people[c],
             "from the verifier": machine[c], "share of failures": (people[c] + machine[c]) / failed if failed else 0.0}
            for c in names]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _ticked(labels: Iterable[Label]) -> list[str]:
    latest: dict[str, Label] = {}
    for label in sorted(labels, key=lambda lab: (lab.created, lab.id)):
        latest[label.annotator] = label
    return sorted({c for lab in latest.values() if lab.verdict == "fail" for c in lab.categories})


def failures_of_eval(ws: Workspace, eval_id: str) -> pd.DataFrame:
    """failures_by_category over one evaluation run's trajectories (empty table if the run is unknown)."""
    from storage.records import EvalRun

    run = ws.repo.get(EvalRun, eval_id)
    return failures_by_category(ws, run.suite if run else "", trajectory_ids=run.trajectory_ids if run else [])
