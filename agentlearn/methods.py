"""The memory methods, the exemplar retrieval modes and how one run is configured: declared once.

Pages, the CLI, evaluation and the agent import these names; nothing else lists them.
"""

from __future__ import annotations

from dataclasses import dataclass

# method -> what it gives the agent besides the task
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

# retrieval mode -> how exemplars are chosen (exemplars.select implements all but "auto")
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
DEFAULT_K = 3
# where playbook proposals come from (memory.proposals), in the order `insights propose` runs them
PROPOSAL_SOURCES = ("errors", "model", "curator")


@dataclass
class RunOptions:
    """How to run: which memory to use, how to decode, how many Reflexion trials."""

    method: str = "none"
    k: int = DEFAULT_K
    exemplar_mode: str = DEFAULT_MODE
    tool_aware: bool = False  # shots cover the likely tools instead of k copies of one call
    # With exemplars, offer only the m likeliest tools (tool_retrieval): "auto" (the suite's choice),
    # "all", or a number.
    tools: str = "auto"
    ranker: str = "auto"  # which TOOL_RANKERS ranks them: "auto" (the suite's choice) or one by name
    trials: int = 1
    # "auto": the suite's promoted adapter (Suite.adapter; the base model when it has none); "" or "none":
    # the base model; otherwise an adapter's id, its job's id or its folder (adapters.find).
    adapter_id: str = "auto"
    source: str = "agent"
    temperature: float = 0.0
    seed: int | None = None
    constrained: bool = True  # decode under the suite's tool-call grammar (embedded model)
    store: bool = True  # False: trajectories are returned but not written (leave-one-out searches)
    bank_size: int | None = None  # learning curves: use only this many exemplars of the bank
    bank_seed: int = 0  # which draw of `bank_size` exemplars
    shot_seed: int | None = None  # repeats: shuffle the order of the shots in the prompt with this seed
    ablate: tuple[str, ...] = ()  # insight ids left out of the playbook (A/B of one bullet)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.method in USES_REFLEXION and self.trials < 2:
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

    @property
    def uses_exemplars(self) -> bool:
        return self.method in USES_EXEMPLARS

    @property
    def uses_insights(self) -> bool:
        return self.method in USES_INSIGHTS

    @property
    def uses_reflexion(self) -> bool:
        return self.method in USES_REFLEXION and self.trials > 1
