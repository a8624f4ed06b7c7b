"""Where things are kept and which model answers, from the environment.

AGENTLEARN_HOME is the one place everything lives (store, vectors, converted models, exports,
adapters, job logs). Secrets (OPENAI_API_KEY) are read from the environment only and are never
written to the store, to exports or to job configs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from agentlearn.models import DEFAULT_LOCAL_MODEL, EMBEDDED_MODELS, embedded_model

# Set in a child started by processes.start: the id of the Process record it reports to.
PROCESS_ID_ENV = "AGENTLEARN_PROCESS_ID"


def _default_home() -> Path:
    return Path(os.environ.get("AGENTLEARN_HOME") or Path.home() / ".agentlearn").expanduser()


def _int(env: os._Environ[str] | dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _fraction(env: os._Environ[str] | dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number between 0 and 1, not {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with `Settings.from_env()`; override fields with `.with_()`."""

    home: Path = field(default_factory=_default_home)
    backend: str = "embedded"  # embedded | openai
    local_model: str = DEFAULT_LOCAL_MODEL  # which embedded model (agentlearn.models.EMBEDDED_MODELS)
    openai_model: str = ""
    openai_base_url: str = ""
    max_new_tokens: int = 384  # a cap; each suite's own budget comes from its longest reference call
    auto_apply_insights: bool = False  # apply ExpeL operations without human review
    playbook_tokens: int = 300  # how much of the prompt the playbook may take (about 2.5 characters a token)
    exemplar_tokens: int = 600  # how much the episode exemplars' transcripts may take (prompts.fit_shots)
    batch_size: int = 16  # prompts generated together by the embedded model
    threads: int = 1  # torch threads for generation: a second one costs far more than it gives on a busy 2-core machine
    concurrency: int = 4  # requests in flight to an OpenAI-compatible endpoint
    constrained: bool = True  # decode under the suite's tool-call grammar (embedded model)
    database_url: str = field(default="", repr=False)  # PostgreSQL for the store (its password stays out of repr)
    claim_seconds: int = 600  # how long an item opened in the labeling queue stays claimed without activity
    # The promotion gate (training.gate): a new adapter must beat the suite's model on heldout accuracy (call
    # accuracy where tasks carry references, else name accuracy) with an exact McNemar p below gate_p_value,
    # and lose no argument kind by more than gate_kind_margin.
    gate_p_value: float = 0.05
    gate_kind_margin: float = 0.10

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from AGENTLEARN_* and OPENAI_* environment variables."""
        env = os.environ
        backend = env.get("AGENTLEARN_BACKEND", "embedded").strip().lower()
        if backend not in ("embedded", "openai"):
            raise ValueError(f"AGENTLEARN_BACKEND must be 'embedded' or 'openai', not {backend!r}")
        local_model = env.get("AGENTLEARN_LOCAL_MODEL", "").strip().lower() or DEFAULT_LOCAL_MODEL
        if local_model not in EMBEDDED_MODELS:
            raise ValueError(f"AGENTLEARN_LOCAL_MODEL must be one of {', '.join(EMBEDDED_MODELS)}, not {local_model!r}")
        return cls(
            home=_default_home(),
            backend=backend,
            local_model=local_model,
            openai_model=env.get("AGENTLEARN_OPENAI_MODEL", env.get("OPENAI_MODEL", "")),
            openai_base_url=env.get("OPENAI_BASE_URL", ""),
            auto_apply_insights=env.get("AGENTLEARN_AUTO_APPLY_INSIGHTS", "") in ("1", "true", "yes"),
            max_new_tokens=_int(env, "AGENTLEARN_MAX_NEW_TOKENS", 384, 8, 4096),
            playbook_tokens=_int(env, "AGENTLEARN_PLAYBOOK_TOKENS", 300, 20, 8192),
            exemplar_tokens=_int(env, "AGENTLEARN_EXEMPLAR_TOKENS", 600, 20, 16384),
            batch_size=_int(env, "AGENTLEARN_BATCH_SIZE", 16, 1, 256),
            threads=_int(env, "AGENTLEARN_THREADS", 1, 1, 256),
            concurrency=_int(env, "AGENTLEARN_CONCURRENCY", 4, 1, 64),
            constrained=env.get("AGENTLEARN_CONSTRAINED", "1").strip().lower() not in ("0", "false", "no", "off"),
            database_url=env.get("AGENTLEARN_DATABASE_URL", "").strip(),
            claim_seconds=_int(env, "AGENTLEARN_CLAIM_SECONDS", 600, 1, 86400),
            gate_p_value=_fraction(env, "AGENTLEARN_GATE_P_VALUE", 0.05),
            gate_kind_margin=_fraction(env, "AGENTLEARN_GATE_KIND_MARGIN", 0.10),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def store_dir(self) -> Path:
        return self.home / "store"

    @property
    def vectors_dir(self) -> Path:
        return self.home / "vectors"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def label_exports_dir(self) -> Path:
        return self.home / "label-exports"

    @property
    def output_dirs(self) -> tuple[Path, ...]:
        """The folders of the workspace that a chosen --out may write into (everything else there is its own)."""
        return self.exports_dir, self.label_exports_dir, self.home / "backups"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def model_label(self) -> str:
        """A short name of the chat model in use, stored on each trajectory."""
        return self.openai_model if self.backend == "openai" else embedded_model(self.local_model).label
