"""What the job runner costs: one SFT config run as an agentlearn job and as a bare TRL script, in one run.

    python -m bench.bench_training [--steps 10] [--repeat 1] [--suite helpdesk-demo] [--batch 0] [--home DIR]

Both runs are separate processes that load the same model and train the same LoRA on the same exported
file with the same settings; the bare script is plain transformers + TRL + PEFT with nothing of
agentlearn, written to do what the job's trainer setup does (agentlearn.training.runner): the same
device, dtype, 4-bit quantization config (QLoRA on CUDA), precision flags, LoRA settings, and rows
longer than max_length left out. The device is CUDA when torch sees one (preset cuda-qlora), else CPU
(preset cpu-small); --batch 0 keeps the preset's batch size. Special tokens are off in both, so both
use TRL's stock SFTTrainer.

Figures, for each path (means over --repeat runs, alternating which path goes first):
- seconds: wall time. The job's runs from launch() until its Process record says it ended (pre-launch check,
  detached process, store writes, progress callback, heartbeat, adapter registration); the bare time
  is the script's process from start to exit. Their ratio job / bare is printed against the target 1.05.
- tokens/s: training tokens over training time, both as the trainer itself reports them: TRL's
  `num_tokens` (the non-padding tokens of every batch trained on, summed over all steps; logged every
  step here) over the trainer's `train_runtime`. The job stores both in its Job record's metrics; the
  bare script prints them as a JSON line. Also printed, as a check, the same count computed outside:
  tokenized row lengths x the rows the steps consume (steps x batch x gradient accumulation), taken
  cycling through the dataset in file order (the trainer shuffles, so a partial epoch may differ).
- peak memory: in each process, read at its exit by a sitecustomize hook that this script puts on the
  child's PYTHONPATH (the job process keeps PYTHONPATH and AGENTLEARN_* variables): on CUDA
  `torch.cuda.max_memory_allocated()`, on CPU the peak resident set size (getrusage ru_maxrss, what
  /proc/<pid>/status calls VmHWM).

Prints a Markdown table and the ratio, and writes bench/results/training.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentlearn import datasets, processes  # noqa: E402
from agentlearn.accounts import local_identity  # noqa: E402
from agentlearn.embeddings import hash_encode  # noqa: E402
from agentlearn.models import chat_model_dir  # noqa: E402
from agentlearn.settings import Settings  # noqa: E402
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite  # noqa: E402
from agentlearn.training import config as jc  # noqa: E402
from agentlearn.training import jobs, preflight, runner  # noqa: E402
from agentlearn.workspace import open_workspace  # noqa: E402

TARGET = 1.05
PEAK_ENV = "AGENTLEARN_BENCH_PEAK_FILE"  # AGENTLEARN_* reaches the job process (processes.child_env)
RESULTS = Path(__file__).parent / "results" / "training.json"

# Imported by every Python process started with this folder on its PYTHONPATH and PEAK_ENV set: at exit
# it writes the process's peak memory to that file.
PEAK_HOOK = r'''
import atexit, json, os, resource, sys

def _report():
    out = {"pid": os.getpid(), "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_max_allocated_bytes"] = max(torch.cuda.max_memory_allocated(d) for d in range(torch.cuda.device_count()))
    with open(os.environ["AGENTLEARN_BENCH_PEAK_FILE"], "w") as f:
        json.dump(out, f)

if os.environ.get("AGENTLEARN_BENCH_PEAK_FILE"):
    atexit.register(_report)
'''

BARE = r'''
import json, os, sys, torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

c = json.loads(sys.argv[1])
cuda = c["resolved_device"] == "cuda"
if c["num_threads"]:
    torch.set_num_threads(c["num_threads"])
tok = AutoTokenizer.from_pretrained(c["base_model"])
if tok.pad_token is None:
    tok.pad_token = tok.eos_token
rows = [json.loads(line) for line in open(c["dataset_path"]) if line.strip()]
rows = [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]
rows = [r for r in rows if len(tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=True,
                                                        return_dict=True)["input_ids"]) <= c["max_length"]]
ds = Dataset.from_list(rows)
kwargs = {"dtype": torch.float32}
bf16 = cuda and torch.cuda.is_bf16_supported()
if cuda:
    kwargs["dtype"] = torch.bfloat16 if bf16 else torch.float16
    kwargs["device_map"] = {"": 0}
    if c["quantize_4bit"]:
        from transformers import BitsAndBytesConfig
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True,
                                                           bnb_4bit_compute_dtype=kwargs["dtype"])
model = AutoModelForCausalLM.from_pretrained(c["base_model"], **kwargs)
model.config.use_cache = False
args = SFTConfig(output_dir=c["out"], max_steps=c["max_steps"], per_device_train_batch_size=c["per_device_train_batch_size"],
                 gradient_accumulation_steps=c["gradient_accumulation_steps"], learning_rate=c["learning_rate"],
                 lr_scheduler_type=c["lr_scheduler_type"], warmup_steps=c["warmup_steps"],
                 logging_steps=c["logging_steps"], seed=c["seed"], save_strategy="no", report_to="none", bf16=bf16,
                 fp16=cuda and not bf16, use_cpu=not cuda, activation_checkpointing=c["gradient_checkpointing"],
                 dataloader_num_workers=0, disable_tqdm=True, max_length=c["max_length"],
                 completion_only_loss=c["completion_only_loss"] or None, packing=False)
targets = c["target_modules"]
peft = LoraConfig(r=c["lora_r"], lora_alpha=c["lora_alpha"], lora_dropout=c["lora_dropout"], task_type="CAUSAL_LM",
                  target_modules=targets if targets == "all-linear" else [m.strip() for m in targets.split(",") if m.strip()])
trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft)
output = trainer.train()
trainer.model.save_pretrained(c["out"] + "/adapter", save_embedding_layers=False)
tok.save_pretrained(c["out"] + "/adapter")
tokens = [e["num_tokens"] for e in trainer.state.log_history if "num_tokens" in e]
print("BENCH " + json.dumps({"train_runtime": output.metrics.get("train_runtime"),
                             "num_tokens": tokens[-1] if tokens else None, "steps": trainer.state.global_step}))
'''


def read_peak(path: Path, device: str) -> float | None:
    """Peak memory in MiB from the hook's file: CUDA max allocated on cuda, else peak RSS."""
    if not path.exists():
        return None
    peak = json.loads(path.read_text())
    value = peak.get("cuda_max_allocated_bytes") if device == "cuda" else peak.get("peak_rss_bytes")
    return None if value is None else value / 2**20


def run_job(ws, config: jc.JobConfig, hook_dir: Path, peak_file: Path) -> dict[str, Any]:
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", PEAK_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook_dir), saved["PYTHONPATH"]) if p)
    os.environ[PEAK_ENV] = str(peak_file)
    start = time.perf_counter()
    wall_start = datetime.now(UTC)
    try:
        job = jobs.launch(ws, config, who=local_identity())  # a bench workspace has no accounts
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    # Polled once a second, like the dashboard: each poll reads the store, and polling ten times a second
    # took CPU from the job's own training (its tokens/s inside training fell by a quarter on 2 cores).
    # The time is the launch until the job's recorded end, so the poll's granularity is not counted.
    job = jobs.wait(ws, job.id, poll=1.0)
    seconds = ((job.finished - wall_start).total_seconds() if job.finished is not None
               else time.perf_counter() - start)
    if job.status != "succeeded":
        raise SystemExit(f"job failed: {job.error}\n{processes.tail(ws, jobs.process(ws, job))}")
    tokens = job.metrics.get("last_num_tokens", job.metrics.get("num_tokens"))
    return {"seconds": seconds, "train_runtime": job.metrics.get("train_runtime"), "num_tokens": tokens,
            "steps": job.step, "pid": jobs.process(ws, job).pid, "job_id": job.id}


def run_bare(config: jc.JobConfig, device: str, out: str, hook_dir: Path, peak_file: Path) -> dict[str, Any]:
    payload = json.dumps({**config.to_dict(), "out": out, "resolved_device": device})
    pythonpath = os.pathsep.join(p for p in (str(hook_dir), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": pythonpath,
           PEAK_ENV: str(peak_file)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", BARE, payload], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"bare TRL script failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("BENCH "))
    return {"seconds": seconds, **json.loads(line[len("BENCH "):])}


def expected_tokens(config: jc.JobConfig, models_dir: Path) -> tuple[int, int]:
    """(tokens, rows kept): row lengths x the rows max_steps consume, cycling through the kept rows in file order."""
    tokenizer = runner.load_tokenizer(config, runner.base_model_dir(config, models_dir))
    dataset, _ = runner.load_rows(config, tokenizer)
    sizes = [runner.row_tokens(config, row, tokenizer) for row in dataset]
    consumed = config.max_steps * config.per_device_train_batch_size * config.gradient_accumulation_steps
    return sum(sizes[i % len(sizes)] for i in range(consumed)), len(sizes)


def mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["num_tokens"] / r["train_runtime"] if r.get("num_tokens") and r.get("train_runtime") else None
             for r in runs]
    peaks = [r["peak_mib"] for r in runs if r.get("peak_mib") is not None]
    return {"seconds": mean([r["seconds"] for r in runs]), "train_runtime": mean([r.get("train_runtime") for r in runs]),
            "num_tokens": mean([r.get("num_tokens") for r in runs]), "tokens_per_s": mean(rates),
            "peak_mib": max(peaks) if peaks else None, "runs": runs}


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--suite", default=DEMO_SUITE, help="the suite whose SFT rows train (a suite other than the "
                                                       "demo must already be in --home's workspace)")
    p.add_argument("--batch", type=int, default=0, help="per-device batch size (0: the preset's)")
    p.add_argument("--home", default="", help="data home (default: a temporary folder)")
    args = p.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    home = Path(args.home or tempfile.mkdtemp(prefix="agentlearn-bench-"))
    ws = open_workspace(Settings(home=home), encoder=hash_encode)
    if args.suite == DEMO_SUITE:
        ensure_demo_suite(ws)
    exported = datasets.export(ws, "sft", args.suite)
    overrides: dict[str, Any] = {"per_device_train_batch_size": args.batch} if args.batch else {}
    config = jc.preset("sft", "cuda-qlora" if device == "cuda" else "cpu-small", dataset_path=exported.path,
                       export_id=exported.id, suite=args.suite, max_steps=args.steps, add_special_tokens=False,
                       base_model=str(chat_model_dir(ws.settings.models_dir)), logging_steps=1, device=device,
                       **overrides)
    # The launcher is a long-lived process (the dashboard): torch and the tokenizer are loaded once, not per job.
    started = time.perf_counter()
    preflight.check(config, ws.settings.models_dir)
    print(f"first pre-launch check in this process (imports torch, loads the tokenizer): "
          f"{time.perf_counter() - started:.1f} s, not counted below")
    outside, rows = expected_tokens(config, ws.settings.models_dir)
    hook_dir = Path(tempfile.mkdtemp(prefix="agentlearn-bench-hook-"))
    (hook_dir / "sitecustomize.py").write_text(PEAK_HOOK)
    runs: dict[str, list[dict[str, Any]]] = {"job": [], "bare": []}
    for i in range(args.repeat):
        def job(i=i):
            return run_job(ws, config, hook_dir, hook_dir / f"job{i}.json"), hook_dir / f"job{i}.json"

        def bare(i=i):
            return run_bare(config, device, str(home / f"bare{i}"), hook_dir, hook_dir / f"bare{i}.json"), \
                hook_dir / f"bare{i}.json"

        # Alternate the order so that a drift in machine load does not favour one side.
        pair = [("job", job), ("bare", bare)]
        for name, fn in pair if i % 2 == 0 else pair[::-1]:
            result, peak_file = fn()
            result["peak_mib"] = read_peak(peak_file, device)
            runs[name].append(result)
            print(f"run {i + 1}: {name:4s} {result['seconds']:7.1f} s", flush=True)
    shutil.rmtree(hook_dir, ignore_errors=True)
    ours, bare_ = summarize(runs["job"]), summarize(runs["bare"])
    ratio = ours["seconds"] / bare_["seconds"]
    memory = "CUDA max allocated" if device == "cuda" else "peak RSS"
    gpu = f" ({torch.cuda.get_device_name(0)})" if device == "cuda" else ""
    print(f"\nSFT {args.steps} steps x batch {config.per_device_train_batch_size} x accumulation "
          f"{config.gradient_accumulation_steps} on {rows} {args.suite} rows, preset {config.preset}, "
          f"device {device}{gpu}, {os.cpu_count()} cores\n")
    print(f"| path | seconds | tokens/s | peak memory MiB ({memory}) |")
    print("|---|---|---|---|")
    for name, s in (("agentlearn job", ours), ("bare TRL script", bare_)):
        print(f"| {name} | {s['seconds']:.1f} | {fmt(s['tokens_per_s'], '.1f')} | {fmt(s['peak_mib'], '.0f')} |")
    verdict = "within" if ratio <= TARGET else "over"
    print(f"\nratio job / bare: {ratio:.3f} (target <= {TARGET}: {verdict})")
    print(f"tokens trained (TRL num_tokens): job {fmt(ours['num_tokens'], '.0f')}, bare {fmt(bare_['num_tokens'], '.0f')}; "
          f"computed outside (row lengths x rows consumed, file order): {outside}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "device": device, "gpu": gpu.strip(" ()"), "cpu_cores": os.cpu_count(), "platform": platform.platform(),
        "torch": torch.__version__, "suite": args.suite, "rows": rows, "steps": args.steps, "repeat": args.repeat,
        "config": config.to_dict(), "memory_measure": memory, "tokens_outside": outside,
        "job": ours, "bare": bare_, "ratio": ratio, "target": TARGET, "within_target": ratio <= TARGET,
    }, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
