"""A job config file is as untrusted as the Training page's inputs: every numeric setting is bounded where the
config is loaded, and the page's inputs take their limits from the same table."""

from __future__ import annotations

import pytest

from agentlearn import cli
from agentlearn.training import config as jc
from tests.test_pages_improve import open_training, page_ws  # noqa: F401 - the page fixture

# (method, setting, YAML value): each must be refused with a message naming the setting and its range.
HOSTILE = [
    ("sft", "learning_rate", ".inf"), ("sft", "learning_rate", ".nan"), ("sft", "learning_rate", "-0.1"),
    ("sft", "learning_rate", "1e9"), ("sft", "lora_dropout", "5.0"), ("sft", "lora_dropout", "-0.5"),
    ("sft", "num_threads", "100000"), ("sft", "num_threads", "-3"), ("sft", "lora_r", "10000000"),
    ("sft", "lora_alpha", "1000000000"), ("sft", "max_steps", "1000000000000"),
    ("sft", "per_device_train_batch_size", "1000000"), ("sft", "gradient_accumulation_steps", "1000000"),
    ("sft", "max_length", "1000000000"), ("sft", "warmup_steps", "-5"), ("sft", "logging_steps", "0"),
    ("sft", "seed", "-1"), ("sft", "seed", "99999999999999999999"), ("sft", "validation_every", "-1"),
    ("dpo", "beta", ".inf"), ("dpo", "beta", "-1"), ("dpo", "beta", "0"), ("grpo", "temperature", "0"),
    ("grpo", "temperature", "1e9"), ("grpo", "num_generations", "1000000"),
    ("grpo", "max_completion_length", "1000000000"), ("grpo", "reward_weights", "[a, b]"),
    ("grpo", "reward_weights", "[.inf, 1]"), ("grpo", "reward_weights", "[1, 2, 3]"),
    ("grpo", "reward_weights", "[true, 1]"), ("grpo", "beta", ".nan"),
]


def test_every_hostile_value_in_a_config_file_is_refused_naming_the_setting(tmp_path):
    accepted = []
    for i, (method, name, value) in enumerate(HOSTILE):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(f"method: {method}\n{name}: {value}\n")
        try:
            jc.load(path)
            accepted.append(f"{method} {name}={value}")
        except ValueError as e:
            assert name in str(e) and (" from " in str(e) or "must be a" in str(e)), str(e)
    assert accepted == []


def test_the_message_gives_the_allowed_range_and_the_cli_refuses_before_starting(tmp_path, capsys, ws):
    path = tmp_path / "job.yaml"
    path.write_text("method: sft\nlearning_rate: .inf\nlora_dropout: 5.0\n")
    assert cli.main(["train", "sft", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "learning_rate must be from 1e-08 to 1, not inf" in err and "lora_dropout must be from 0 to 0.9" in err
    for method in jc.METHODS:  # every preset stays inside the bounds
        for name in jc.PRESETS:
            assert jc.problems(jc.preset(method, name)) == []


def test_the_training_page_offers_only_what_a_config_accepts(page_ws):  # noqa: F811 - the imported fixture
    from tests.seed import seed_workspace

    seed_workspace(page_ws.repo)
    at = open_training()
    inputs = {n.label: n for n in at.number_input}
    for label, name in (("Steps", "max_steps"), ("Learning rate", "learning_rate"), ("Batch size",
                        "per_device_train_batch_size"), ("Max tokens per row", "max_length")):
        assert (inputs[label].min, inputs[label].max) == pytest.approx(jc.bounds("sft", name)), label
