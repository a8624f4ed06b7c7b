"""How one run is configured, declared once: the memory methods, retrieval modes, tool rankers and `RunOptions`.

Every option of a run is one field of `RunOptions` with its help text in the field's metadata. From that
declaration come the command-line arguments of run, eval, curve and improve (`add_arguments`, `from_args`),
the command line a page starts (`command_line`, `to_argv`), the dict it is stored as (`to_dict`,
`from_dict`) and the one readable label (`label`). Resolving "auto" is retrieval.resolve_options; what it
returns is the same class with every choice made, and that is what the agent uses and the records keep.
Pages, the CLI, evaluation and the agent import these names; nothing else lists them.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, get_args

from storage.records import EvalRun, TrainingMethod, Trajectory

# method -> what it gives the agent besides the task (the one list of memory methods)
METHODS: dict[str, str] = {
    "none": "the task alone (zero-shot)",
    "exemplars": "k solved cases retrieved from the suite's bank, as few-shot turns",
    "reflexion": "after a failed trial, a written reflection and another trial",
    "insights": "the suite's playbook (active insights, by section, best first) in the system message",
    "exemplars+insights": "exemplars and the playbook together",
    "all": "exemplars, the playbook and Reflexion together",
}
USES_EXEMPLARS = ("exemplars", "exemplars+insights", "all")
USES_INSIGHTS = ("insights", "exemplars+insights", "all")
USES_REFLEXION = ("reflexion", "all")

# retrieval mode -> how exemplars are chosen (the one list; memory.exemplars.select implements all but "auto")
MODES: dict[str, str] = {
    "auto": "the mode and k that leave-one-out on the train split chose for this suite (retrieval.choose)",
    "fixed": "the same first k exemplars for every task",
    "type": "exemplars sharing a tag with the task, by embedding similarity",
    "bm25": "BM25 over the words of the conversation",
    "semantic": "cosine similarity of MiniLM embeddings",
    "hybrid": "BM25 and MiniLM ranks fused by reciprocal rank fusion",
    "mmr": "maximal marginal relevance over the most similar exemplars",
}
RETRIEVAL_MODES = tuple(m for m in MODES if m != "auto")  # the concrete modes
# retrieval mode -> (what its score is called, what it means): scores of two modes are not comparable
SCORES: dict[str, tuple[str, str]] = {
    "fixed": ("fixed", "1 for every exemplar: no ranking"),
    "type": ("cosine", "cosine similarity, -1 to 1, among the exemplars that share a tag"),
    "bm25": ("BM25", "0 to tens: grows with the number and rarity of shared words"),
    "semantic": ("cosine", "cosine similarity of the embeddings, -1 to 1"),
    "hybrid": ("RRF", "fused rank score, the sum of 1/(60 + rank): at most 2/61 = 0.033"),
    "mmr": ("cosine", "cosine similarity to the task, -1 to 1; the order also rewards variety"),
}
DEFAULT_MODE = "auto"
TOOL_CHOICES = ("auto", "all", "1", "2", "3", "5", "8")  # RunOptions.tools: the suite's choice, every tool, or N
# How tool_retrieval ranks the tools to offer: both lists fused, the tools' descriptions, the exemplars' votes.
TOOL_RANKERS = ("fused", "description", "exemplars")
DEFAULT_RANKER = TOOL_RANKERS[0]  # before a suite's choice names one
DEFAULT_K = 3
# How an adapter is trained (agentlearn.training), and the training files `export` writes.
TRAINING_METHODS: tuple[str, ...] = get_args(TrainingMethod)
EXPORT_KINDS = (*TRAINING_METHODS, "openai-sft", "openai-dpo")
# where playbook proposals come from (memory.proposals), in the order `insights propose` runs them
PROPOSAL_SOURCES = ("errors", "model", "curator")

RUN, EVAL, CURVE, IMPROVE = "run", "eval", "curve", "improve"
COMMANDS = (RUN, EVAL, CURVE, IMPROVE)  # the commands that take run options


def option(default: Any, help: str, *, flag: str = "", commands: tuple[str, ...] = (RUN, EVAL),
           choices: tuple[str, ...] | None = None, **kw: Any) -> Any:
    """A RunOptions field: its default, help text, command-line flag and the commands that take it.

    `flag` "" keeps the option off the command line (set by code: learning curves, repeats, searches).
    """
    meta = {"help": help, "flag": flag, "commands": commands if flag else (), "choices": choices}
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass
class RunOptions:
    """How to run: which memory to use, how to retrieve and decode, how many Reflexion trials."""

    method: str = option("none", "memory method: " + "; ".join(f"{m}: {d}" for m, d in METHODS.items()),
                         flag="--method", choices=tuple(METHODS))
    exemplar_mode: str = option(DEFAULT_MODE, "exemplar retrieval (default auto: the suite's chosen mode and k)",
                                flag="--mode", choices=tuple(MODES), commands=(RUN, EVAL, CURVE))
    k: int = option(DEFAULT_K, "exemplars per prompt (with --mode auto: the suite's choice)", flag="--k",
                    commands=(RUN, EVAL, CURVE))
    tool_aware: bool = option(False, "shots cover the likely tools, not k copies of one call", flag="--tool-aware")
    tools: str = option("auto", "offer only the N likeliest tools: auto (with exemplars the suite's choice, else "
                                "all), all, or N (1: the ranker chooses the tool, the model writes the arguments)",
                        flag="--tools")
    ranker: str = option("auto", "how the likeliest tools are ranked: auto (the suite's choice), fused, description "
                                 "(the request against each tool's name and description) or exemplars (what "
                                 "similar requests called)", flag="--ranker", choices=("auto", *TOOL_RANKERS))
    trials: int = option(3, "Reflexion trials per task (methods with Reflexion; 1 for the others)", flag="--trials")
    adapter_id: str = option("auto", "the LoRA adapter to run with: auto (the suite's promoted model), none (the base "
                                     "model), or an adapter's id, its job's id or its folder", flag="--adapter")
    constrained: bool = option(True, "decode freely instead of under the suite's tool-call grammar",
                               flag="--no-constrained")
    optional_args: str = option("auto", "optional arguments answers keep: auto (where the suite's references "
                                        "leave them out, only values the request states; agentlearn/optional_args.py) "
                                        "or all",
                                flag="--optional-args", choices=("auto", "all"))
    limit: int | None = option(None, "only the first N tasks", flag="--limit", commands=COMMANDS)
    ablate: tuple[str, ...] = option((), "leave this playbook bullet out (repeatable); runs the whole playbook too "
                                         "and compares", flag="--ablate", commands=(EVAL,))
    temperature: float = option(0.0, "sampling temperature (0: greedy)")
    seed: int | None = option(None, "sampling seed")
    source: str = option("agent", "what the stored trajectories say made them (agent, eval, auto)")
    store: bool = option(True, "False: trajectories are returned but not written (leave-one-out searches)")
    bank_size: int | None = option(None, "learning curves: use only this many exemplars of the bank")
    bank_seed: int = option(0, "which draw of `bank_size` exemplars")
    shot_seed: int | None = option(None, "repeats: shuffle the order of the shots in the prompt with this seed")
    # Set by retrieval.resolve_options: the fields whose "auto" it replaced with the suite's choice.
    auto: tuple[str, ...] = option((), "the options the suite's choice filled in", compare=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method not in USES_REFLEXION:
            self.trials = 1  # only Reflexion runs a task again
        elif self.trials < 2:
            self.trials = 3  # Reflexion with one trial would never use a reflection
        if self.exemplar_mode not in MODES:
            raise ValueError(f"unknown exemplar mode {self.exemplar_mode!r}; choose one of {', '.join(MODES)}")
        self.tools = str(self.tools).strip().lower()
        if self.tools not in ("auto", "all") and not (self.tools.isdigit() and int(self.tools) >= 1):
            raise ValueError(f"tools must be auto, all or a number of tools of at least 1, not {self.tools!r}")
        if self.ranker not in ("auto", *TOOL_RANKERS):
            raise ValueError(f"unknown tool ranker {self.ranker!r}; choose auto or one of {', '.join(TOOL_RANKERS)}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, not {self.k}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1 task, not {self.limit}")
        self.ablate = tuple(self.ablate)
        self.auto = tuple(self.auto)

    @property
    def uses_exemplars(self) -> bool:
        return self.method in USES_EXEMPLARS

    @property
    def uses_insights(self) -> bool:
        return self.method in USES_INSIGHTS

    @property
    def narrows_tools(self) -> bool:
        """Whether only the N likeliest tools are offered (tools is a number), for any method."""
        return self.tools not in ("all", "auto")

    @property
    def uses_reflexion(self) -> bool:
        return self.method in USES_REFLEXION and self.trials > 1

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with some fields changed (checked like a new one)."""
        return dataclasses.replace(self, **changes)

    # --- stored form -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON/YAML form: every field, tuples as lists."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        """Back from `to_dict` (or a YAML file); an unknown key is an error naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown run option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    # --- command line ------------------------------------------------------------------------------

    def to_argv(self, command: str) -> list[str]:
        """This command's flags for the options that differ from their defaults (a child's command line)."""
        out: list[str] = []
        for f in cli_fields(command):
            value, default = getattr(self, f.name), default_of(f)
            if value == default or (f.name == "trials" and not self.uses_reflexion):
                continue
            if isinstance(value, bool):
                out.append(f.metadata["flag"])  # a switch: --tool-aware, --no-constrained
            elif isinstance(value, tuple):
                for item in value:
                    out += [f.metadata["flag"], str(item)]
            else:
                out += [f.metadata["flag"], str(value)]
        return out

    # --- what people read --------------------------------------------------------------------------

    def label(self, adapter_name: str = "") -> str:
        """The one readable name of a configuration, e.g. 'exemplars · auto: hybrid k=5 · tool-aware ·
        2 tools (fused)'. Parts that do not apply to the method are left out; `adapter_name` names a non-base model."""
        parts = [self.method]
        if self.uses_exemplars:
            parts += self.retrieval_label().split(" · ")
        elif self.shortlist_label():
            parts.append(self.shortlist_label())
        if self.uses_reflexion:
            parts.append(f"{self.trials} trials")
        if self.ablate:
            parts.append(f"without {len(self.ablate)} bullet{'s' if len(self.ablate) > 1 else ''}")
        parts += [] if self.constrained else ["free decoding"]
        parts += [f"T={self.temperature:g}"] if self.temperature else []
        parts += [f"bank {self.bank_size}"] if self.bank_size is not None else []
        # any other declared option that differs from its default is named as on the command line
        parts += [f"{f.metadata['flag'].lstrip('-')} {getattr(self, f.name)}" for f in dataclasses.fields(self)
                  if f.metadata["flag"] and f.name not in _LABELLED and getattr(self, f.name) != default_of(f)]
        text = " · ".join(parts)
        adapter = adapter_name or ("" if self.adapter_id in ("", "none", "auto") else self.adapter_id)
        return text + (f" + {adapter}" if adapter else "")

    def retrieval_label(self) -> str:
        """How exemplars and tools are chosen, e.g. 'auto: hybrid k=5 · tool-aware · tool chosen by the fused
        ranker'."""
        auto = "auto: " if "exemplar_mode" in self.auto else ""
        parts = [f"{auto}{self.exemplar_mode} k={self.k}"] + (["tool-aware"] if self.tool_aware else [])
        return " · ".join(parts + ([self.shortlist_label()] if self.shortlist_label() else []))

    def shortlist_label(self) -> str:
        """How the offered tools are narrowed, e.g. 'tool chosen by the description ranker'; "" for every tool."""
        ranker = "" if self.ranker == "auto" else self.ranker
        if self.tools == "1":
            return f"tool chosen by the {ranker or DEFAULT_RANKER} ranker"
        if self.narrows_tools:
            return f"{self.tools} tools" + (f" ({ranker})" if ranker else "")
        return ""


def help_of(name: str) -> str:
    """The help text RunOptions declares for a field (the CLI's --help and the pages' tooltips)."""
    return RunOptions.__dataclass_fields__[name].metadata["help"]


def options_of(run: EvalRun | Trajectory) -> RunOptions:
    """The options an evaluation (or one trajectory) ran with, auto resolved: as stored, or read off the
    fields of the record (a trajectory keeps what its memory says; an older evaluation its fields)."""
    if isinstance(run, Trajectory):
        m = run.memory
        return RunOptions(method=m.method if m.method in METHODS else "none",
                          exemplar_mode=m.exemplar_mode or DEFAULT_MODE, k=m.k or DEFAULT_K,
                          tool_aware=m.tool_aware, tools=str(len(m.tools_offered)) if m.tools_offered else "all",
                          ranker=m.ranker or "auto", adapter_id=run.adapter, constrained=run.constrained,
                          source=run.source)
    if run.options:
        return RunOptions.from_dict(run.options)
    mode = run.exemplar_mode or DEFAULT_MODE
    auto = ("exemplar_mode", "k", "tool_aware") if mode.startswith("auto:") else ()
    return RunOptions(method=run.method, exemplar_mode=mode.removeprefix("auto:"), k=max(run.k, 1),
                      tool_aware=run.tool_aware, tools=str(run.tools) if run.tools else "all",
                      ranker=run.ranker or "auto", adapter_id=run.adapter, constrained=run.constrained,
                      temperature=run.temperature, bank_size=run.bank_size, ablate=tuple(run.ablated), auto=auto,
                      source="eval")


# the options label() names in their own words (limit is the scope, not the configuration)
_LABELLED = {"method", "exemplar_mode", "k", "tool_aware", "tools", "ranker", "trials", "adapter_id", "constrained",
             "limit", "ablate"}


def default_of(f: dataclasses.Field) -> Any:
    """A field's declared default."""
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def cli_fields(command: str) -> list[dataclasses.Field]:
    """The RunOptions fields a command takes on its command line (and a page offers for it)."""
    return [f for f in dataclasses.fields(RunOptions) if command in f.metadata["commands"]]


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The command's run options as arguments (from RunOptions' declaration), and --suite."""
    if command not in COMMANDS:
        raise ValueError(f"{command!r} takes no run options; commands that do: {', '.join(COMMANDS)}")
    parser.add_argument("--suite", required=True, help="the suite's name")
    for f in cli_fields(command):
        meta, default = f.metadata, default_of(f)
        kw: dict[str, Any] = {"dest": f.name, "help": meta["help"]}
        if isinstance(default, bool):
            kw["action"] = "store_false" if default else "store_true"
        elif isinstance(default, tuple):
            kw.update(action="append", default=[], metavar="ID")
        else:
            kw.update(default=default, choices=meta["choices"],
                      type=int if f.type in ("int", "int | None") else str)
        parser.add_argument(meta["flag"], **kw)


def from_args(ns: argparse.Namespace, **fixed: Any) -> RunOptions:
    """The RunOptions an `add_arguments` command was given; `fixed` sets the fields the command decides."""
    given = {f.name: getattr(ns, f.name) for f in dataclasses.fields(RunOptions) if hasattr(ns, f.name)}
    return RunOptions(**{**given, **fixed})


def command_line(command: str, suite: str, options: RunOptions, **extra: Any) -> list[str]:
    """The `python -m agentlearn` arguments that run `command` on a suite with these options (a page's child).

    `extra` are the command's own arguments (split="heldout" -> --split heldout; a False or None one is left out).
    """
    argv = [command, "--suite", suite, *options.to_argv(command)]
    for name, value in extra.items():
        if value is None or value is False:
            continue
        argv += [f"--{name.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return argv
