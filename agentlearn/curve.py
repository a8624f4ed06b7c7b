"""The learning curve: held-out accuracy against the number of experiences in the exemplar bank.

For each bank size (e.g. 0, 4, 8, 16, all) and each draw, the bank is cut to a deterministic random
subset of that many exemplars (exemplars.select's bank_size / bank_seed) and the heldout split is
evaluated with the chosen retrieval. Size 0 is a zero-shot run (method none) under the same decoding and
"all" a plain exemplars run, so both also count as ordinary evaluations; they have one draw each (every
draw would be the same). Each point is a stored EvalRun of one group, so the
curve's figures can be traced to the trajectories behind them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

from agentlearn.evaluate import evaluate
from agentlearn.methods import RunOptions
from agentlearn.workspace import Workspace
from storage.records import Exemplar, LearningCurve

DEFAULT_SIZES: tuple[int | None, ...] = (0, 4, 8, 16, None)  # None: the whole bank
DEFAULT_DRAWS = 3


def parse_sizes(text: str) -> list[int | None]:
    """"0,4,8,16,all" -> [0, 4, 8, 16, None]; a clear error for anything else."""
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part.lower() == "all":
            sizes.append(None)
            continue
        try:
            value = int(part)
        except ValueError:
            raise ValueError(f"bank sizes are whole numbers or 'all', separated by commas; {part!r} is neither") from None
        if value < 0:
            raise ValueError(f"a bank size cannot be negative ({value})")
        sizes.append(value)
    if not sizes:
        raise ValueError("give at least one bank size, e.g. 0,4,8,all")
    return sizes


def learning_curve(ws: Workspace, suite: str, options: RunOptions | None = None,
                   sizes: Sequence[int | None] = DEFAULT_SIZES, draws: int = DEFAULT_DRAWS, split: str = "heldout",
                   progress: Callable[[int, int, str], None] | None = None) -> LearningCurve:
    """Measure and store the suite's learning curve with these options' retrieval (mode, k, decoding, limit);
    `progress(done, total, message)` after each point."""
    options = options or RunOptions()
    if draws < 1:
        raise ValueError(f"draws must be at least 1, not {draws}")
    bank = sum(1 for e in ws.repo.find(Exemplar, suite=suite) if e.active)
    # Sizes at or above the bank are the whole bank: measure it once.
    wanted = sorted({None if s is None or s >= bank else s for s in sizes}, key=lambda s: bank if s is None else s)
    plan = [(s, d) for s in wanted for d in range(1 if s in (0, None) else draws)]
    group = uuid.uuid4().hex[:12]
    curve = LearningCurve(suite=suite, split=split, exemplar_mode=options.exemplar_mode, k=options.k,
                          model=ws.settings.model_label)
    started = time.perf_counter()
    for i, (size, draw) in enumerate(plan, 1):
        # The ends of the curve are ordinary evaluations (zero-shot, and the whole bank), so they also
        # serve as the baseline and the result of the method wherever evaluations are compared.
        point = options.replace(method="none" if size == 0 else "exemplars",
                                bank_size=None if size in (0, None) else size, bank_seed=draw)
        if size == 0:
            point = point.replace(tools="all")  # zero-shot as it is: every tool offered, as along the curve
        run = evaluate(ws, suite, point, split=split, group=group)
        if run.exemplar_mode:
            curve.exemplar_mode, curve.k = run.exemplar_mode, run.k
        curve.points.append({"bank_size": bank if size is None else size, "draw": draw, "n": run.n,
                             "name_accuracy": run.name_accuracy, "call_accuracy": run.call_accuracy,
                             "args_score": run.args_score, "eval_id": run.id})
        if progress:
            progress(i, len(plan), f"bank {bank if size is None else size}, draw {draw + 1}: "
                                   f"name accuracy {run.name_accuracy:.0%} (n={run.n})")
    curve.seconds = time.perf_counter() - started
    return ws.repo.put(curve)
