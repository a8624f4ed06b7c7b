"""What the job runner costs: one SFT config run as an agentlearn job and as a bare TRL script.

    python bench/bench_training_overhead.py [--steps 10] [--repeat 1] [--suite helpdesk-demo]

Both runs are separate processes that load the same model and train the same LoRA on the same exported
file with the same settings; the bare script is plain transformers + TRL + PEFT with nothing of
agentlearn. The job's time runs from launch() until the Job record says it ended (pre-launch check,
detached process, store writes, progress callback, heartbeat, adapter registration); the bare time is
the script's process from start to exit. Special tokens are off in both, so both use TRL's stock SFTTrainer. Prints both
times and their ratio (target <= 1.05).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agentlearn import datasets  # noqa: E402
from agentlearn.embeddings import hash_encode  # noqa: E402
from agentlearn.models import chat_model_dir  # noqa: E402
from agentlearn.settings import Settings  # noqa: E402
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite  # noqa: E402
from agentlearn.training import config as jc  # noqa: E402
from agentlearn.training import jobs, preflight  # noqa: E402
from agentlearn.workspace import open_workspace  # noqa: E402

BARE = r'''
import json, sys, torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

c = json.loads(sys.argv[1])
tok = AutoTokenizer.from_pretrained(c["base_model"])
model = AutoModelForCausalLM.from_pretrained(c["base_model"], dtype=torch.float32)
rows = [json.loads(line) for line in open(c["dataset_path"]) if line.strip()]
ds = Dataset.from_list([{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows])
args = SFTConfig(output_dir=c["out"], max_steps=c["max_steps"], per_device_train_batch_size=c["per_device_train_batch_size"],
                 gradient_accumulation_steps=c["gradient_accumulation_steps"], learning_rate=c["learning_rate"],
                 lr_scheduler_type=c["lr_scheduler_type"], warmup_steps=c["warmup_steps"],
                 logging_steps=c["logging_steps"], seed=c["seed"], save_strategy="no", report_to="none", bf16=False,
                 fp16=False, use_cpu=True, activation_checkpointing=False, max_length=c["max_length"],
                 completion_only_loss=True, disable_tqdm=True)
peft = LoraConfig(r=c["lora_r"], lora_alpha=c["lora_alpha"], lora_dropout=c["lora_dropout"],
                  target_modules="all-linear", task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=peft)
trainer.train()
trainer.save_model(c["out"] + "/adapter")
'''


def run_job(ws, config: jc.JobConfig) -> float:
    start = time.perf_counter()
    job = jobs.launch(ws, config)
    job = jobs.wait(ws, job.id, poll=0.1)
    seconds = time.perf_counter() - start
    if job.status != "succeeded":
        raise SystemExit(f"job failed: {job.error}\n{jobs.log_tail(job)}")
    return seconds


def run_bare(config: jc.JobConfig, out: str) -> float:
    payload = json.dumps({**config.to_dict(), "out": out})
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", BARE, payload], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"bare TRL script failed:\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--home", default="", help="data home (default: a temporary folder)")
    args = p.parse_args()
    home = Path(args.home or tempfile.mkdtemp(prefix="agentlearn-bench-"))
    ws = open_workspace(Settings(home=home), encoder=hash_encode)
    ensure_demo_suite(ws)
    exported = datasets.export(ws, "sft", DEMO_SUITE)
    config = jc.preset("sft", "cpu-small", dataset_path=exported.path, export_id=exported.id, suite=DEMO_SUITE,
                       max_steps=args.steps, per_device_train_batch_size=args.batch, add_special_tokens=False,
                       base_model=str(chat_model_dir(ws.settings.models_dir)), logging_steps=1)
    # The launcher is a long-lived process (the dashboard): torch and the tokenizer are loaded once, not per job.
    started = time.perf_counter()
    preflight.check(config, ws.settings.models_dir)
    print(f"first pre-launch check in this process (imports torch, loads the tokenizer): "
          f"{time.perf_counter() - started:.1f} s, not counted below")
    ours, bare = [], []
    for i in range(args.repeat):
        # Alternate the order so that a drift in machine load does not favour one side.
        pair = [("job", lambda: run_job(ws, config)), ("bare", lambda i=i: run_bare(config, str(home / f"bare{i}")))]
        for name, fn in pair if i % 2 == 0 else pair[::-1]:
            seconds = fn()
            (ours if name == "job" else bare).append(seconds)
            print(f"run {i + 1}: {name:4s} {seconds:7.1f} s", flush=True)
    o, b = sum(ours) / len(ours), sum(bare) / len(bare)
    print(f"SFT {args.steps} steps x batch {args.batch} on {exported.rows} demo rows, {os.cpu_count()} cores")
    print(f"agentlearn job: {o:.1f} s   bare TRL script: {b:.1f} s   ratio: {o / b:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
