"""A workspace: the settings, the store and the models that every agentlearn function works on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from langchain_core.language_models.chat_models import BaseChatModel

from agentlearn.caches import Caches, for_store
from agentlearn.settings import Settings
from storage import CorruptStoreError, Repository, open_repository, open_vector_table
from storage.vectors import VectorTableBase

T = TypeVar("T")

Encoder = Callable[[Sequence[str]], np.ndarray]
ChatFactory = Callable[..., BaseChatModel]


def _real_encoder(texts: Sequence[str]) -> np.ndarray:
    from agentlearn.embeddings import encode

    return encode(texts)


def _real_chat(settings: Settings, adapter_dir: str = "", temperature: float = 0.0,
               seed: int | None = None) -> BaseChatModel:
    from agentlearn.llm import chat_model

    return chat_model(settings, adapter_dir=adapter_dir, temperature=temperature, seed=seed)


@dataclass
class Workspace:
    """Everything a learning step needs. Tests pass a fake encoder and chat factory.

    `caches` holds what is derived from the store (indices, exemplar banks, tool vectors); open_workspace
    gives every workspace on one store the same one (agentlearn.caches).
    """

    settings: Settings
    repo: Repository
    encoder: Encoder = _real_encoder
    chat_factory: ChatFactory = _real_chat
    caches: Caches = field(default_factory=Caches, repr=False)
    _vectors: dict[str, VectorTableBase] = field(default_factory=dict, repr=False)

    def vectors(self, name: str) -> VectorTableBase:
        """A named embedding table beside the store (loaded on first use).

        An unreadable table comes back empty: its next sync rebuilds it from the store.
        """
        table = self._vectors.get(name)
        if table is None:
            table = self._vectors[name] = open_vector_table(self.repo, self.settings.vectors_dir, name)
        try:
            return table.load()
        except CorruptStoreError:
            return table

    def kept(self, name: object, kinds: Sequence[type], build: Callable[[], T]) -> T:
        """build(), kept in the caches until a record of one of `kinds` is written (tables a page draws on
        every visit, whose inputs change far less often)."""
        return self.caches.get(name, tuple(self.repo.version(kind) for kind in kinds), build)

    def chat(self, adapter_dir: str = "", temperature: float = 0.0, seed: int | None = None) -> BaseChatModel:
        """The configured chat model, optionally with a LoRA adapter or sampling."""
        return self.chat_factory(self.settings, adapter_dir=adapter_dir, temperature=temperature, seed=seed)


def store_location(settings: Settings) -> str:
    """Where the store lives, as one string: the database URL, or the store folder's resolved path."""
    return settings.database_url or str(settings.store_dir.resolve())


def open_workspace(settings: Settings | None = None, encoder: Encoder | None = None,
                   chat_factory: ChatFactory | None = None) -> Workspace:
    """Open the workspace at settings.home (AGENTLEARN_HOME by default), creating folders."""
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    ws = Workspace(settings=settings, repo=open_repository(str(settings.store_dir), settings.database_url),
                   caches=for_store(store_location(settings)))
    if encoder is not None:
        ws.encoder = encoder
    if chat_factory is not None:
        ws.chat_factory = chat_factory
    return ws
