"""LoRA training with TRL (SFT, DPO, GRPO): configs, the job entry point, progress and the job runner."""
