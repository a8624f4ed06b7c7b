"""Exports: TRL and OpenAI formats from the store, lineage, people over the verifier, no held-out leaks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlearn import datasets
from agentlearn.prompts import DEFAULT_INSTRUCTION, build_prompt
from agentlearn.settings import Settings
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, import_jsonl
from agentlearn.toolcall import format_tool_call, parse_tool_call
from storage.records import DatasetExport, Exemplar, Label, Preference, Task, ToolCall, Trajectory, Verdict

SUITE = "mini"
LINES = [
    ("a1", "I forgot my password, my username is akhan.", "reset_password", {"username": "akhan"}),
    ("a2", "Account bnovak is locked after too many tries.", "unlock_account", {"username": "bnovak"}),
    ("a3", "Reset the password of user cmoreau please.", "reset_password", {"username": "cmoreau"}),
    ("a4", "dlee cannot log in, the account is locked.", "unlock_account", {"username": "dlee"}),
]


def mini_suite(ws, tmp_path: Path, heldout: float = 0.0, lines=LINES) -> dict[str, Task]:
    """A tiny real suite imported through tasks.import_jsonl (which also writes reference exemplars)."""
    path = tmp_path / "mini.jsonl"
    path.write_text("\n".join(json.dumps({
        "sample_id": sid, "input": [{"role": "user", "content": text}],
        "expected_function_call": {"name": name, "arguments": args}}) for sid, text, name, args in lines) + "\n")
    import_jsonl(ws, path, SUITE, heldout=heldout)
    return {t.sample_id: t for t in ws.repo.find(Task, suite=SUITE)}


def retire_references(ws) -> None:
    for ex in ws.repo.all(Exemplar):
        ws.repo.put(ex.model_copy(update={"active": False}))


def run(ws, task: Task, output: str, success: bool) -> Trajectory:
    call = parse_tool_call(output).call
    return ws.repo.put(Trajectory(task_id=task.id, suite=task.suite, split=task.split, output=output, tool_call=call,
                                  verdict=Verdict(success=success, reward=float(success), reason="")))


def read(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def call_text(name: str, **args) -> str:
    return format_tool_call(ToolCall(name=name, arguments=args))


# --- SFT ---------------------------------------------------------------------------------------


def test_sft_export_of_the_demo_suite_uses_the_agents_prompt_and_only_train_tasks(ws):
    ensure_demo_suite(ws)
    record = datasets.export(ws, "sft", DEMO_SUITE)
    train = {t.id: t for t in ws.repo.find(Task, suite=DEMO_SUITE, split="train")}
    heldout = [t for t in ws.repo.find(Task, suite=DEMO_SUITE, split="heldout")]
    rows = read(record.path)
    assert record.rows == len(rows) == len(train) and heldout
    assert Path(record.path).parent == ws.settings.exports_dir
    assert ws.repo.get(DatasetExport, record.id).exemplar_ids == record.exemplar_ids
    by_prompt = {json.dumps(datasets.prompt_for(t)): t for t in train.values()}
    for row in rows:
        *prompt, answer = row["messages"]
        task = by_prompt[json.dumps(prompt)]  # the exact zero-shot prompt the agent sends
        assert prompt == [m.model_dump() for m in build_prompt(task, [])]
        assert answer["role"] == "assistant" and parse_tool_call(answer["content"]).call == task.expected
    held_texts = {m.content for t in heldout for m in t.input}
    assert not any(m["content"] in held_texts for row in rows for m in row["messages"])


def test_sft_people_win_over_the_verifier_and_lineage_is_kept(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    retire_references(ws)
    verified_but_wrong = run(ws, tasks["a1"], call_text("unlock_account", username="akhan"), success=True)
    failed_but_right = run(ws, tasks["a2"], call_text("unlock_account", username="bnovak"), success=False)
    verified = run(ws, tasks["a3"], call_text("reset_password", username="cmoreau"), success=True)
    no = ws.repo.put(Label(trajectory_id=verified_but_wrong.id, annotator="ann", verdict="fail"))
    yes = ws.repo.put(Label(trajectory_id=failed_but_right.id, annotator="ann", verdict="success"))
    record = datasets.export(ws, "sft", SUITE)
    answers = {row["messages"][-1]["content"] for row in read(record.path)}
    assert answers == {call_text("unlock_account", username="bnovak"), call_text("reset_password", username="cmoreau")}
    assert set(record.trajectory_ids) == {failed_but_right.id, verified.id}
    assert record.label_ids == [yes.id] and no.id not in record.label_ids and record.exemplar_ids == []


def test_sft_dedupes_by_task_and_falls_back_to_reference_exemplars(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    run(ws, tasks["a1"], call_text("reset_password", username="akhan"), success=True)
    run(ws, tasks["a1"], call_text("reset_password", username="AKHAN"), success=True)
    record = datasets.export(ws, "sft", SUITE)
    assert record.rows == 4  # one per task: a1 from its newest success, the rest from references
    assert len(record.trajectory_ids) == 1 and len(record.exemplar_ids) == 3


def test_heldout_runs_are_never_exported(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path, heldout=1.0)  # every task held out
    run(ws, tasks["a1"], call_text("reset_password", username="akhan"), success=True)
    with pytest.raises(ValueError, match="has no train tasks"):
        datasets.export(ws, "sft", SUITE)


def test_empty_exports_say_what_to_do(ws, tmp_path):
    mini_suite(ws, tmp_path)
    with pytest.raises(ValueError, match="no preference pairs in suite 'mini'.*Preferences page"):
        datasets.export(ws, "dpo", SUITE)
    with pytest.raises(ValueError, match="Labeling page"):
        datasets.export(ws, "openai-dpo", SUITE, pairs_from=("ratings",))
    retire_references(ws)
    with pytest.raises(ValueError, match="no successful train runs or reference exemplars"):
        datasets.export(ws, "sft", SUITE)
    with pytest.raises(ValueError, match="unknown export kind"):
        datasets.export(ws, "kto", SUITE)
    assert ws.repo.count(DatasetExport) == 0


# --- DPO ---------------------------------------------------------------------------------------


def prefer(ws, task: Task, a: str, b: str, choice: str, corrected: str = "") -> Preference:
    return ws.repo.put(Preference(task_id=task.id, prompt=task.input, response_a=a, response_b=b, choice=choice,
                                  corrected=corrected, annotator="ann"))


def test_dpo_pairs_from_preferences(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    good, bad = call_text("reset_password", username="akhan"), call_text("unlock_account", username="akhan")
    fixed = call_text("unlock_account", username="bnovak")
    p1 = prefer(ws, tasks["a1"], bad, good, "B")
    p2 = prefer(ws, tasks["a2"], "no idea", "unlock it", "A", corrected=fixed)
    prefer(ws, tasks["a3"], good, bad, "tie")
    prefer(ws, tasks["a4"], good, bad, "both_bad")
    record = datasets.export(ws, "dpo", SUITE)
    rows = read(record.path)
    assert record.preference_ids == [p1.id, p2.id]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [(good, bad),
                                                                                        (fixed, "unlock it")]
    assert rows[0]["prompt"] == datasets.prompt_for(tasks["a1"])
    assert all(r["chosen"][0]["role"] == r["rejected"][0]["role"] == "assistant" for r in rows)


def test_dpo_pairs_from_ratings_and_verifier(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    right, wrong = call_text("reset_password", username="akhan"), call_text("unlock_account", username="akhan")
    hi = run(ws, tasks["a1"], right, success=True)
    lo = run(ws, tasks["a1"], wrong, success=False)
    ws.repo.put(Label(trajectory_id=hi.id, annotator="ann", verdict="success", score=5))
    ws.repo.put(Label(trajectory_id=lo.id, annotator="ann", verdict="fail", score=2))
    run(ws, tasks["a3"], call_text("reset_password", username="cmoreau"), success=True)
    run(ws, tasks["a3"], "I will reset it for you.", success=False)
    by_rating = datasets.export(ws, "dpo", SUITE, pairs_from=("ratings",))
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in read(by_rating.path)] == [(right, wrong)]
    assert set(by_rating.trajectory_ids) == {hi.id, lo.id} and len(by_rating.label_ids) == 2
    both = datasets.export(ws, "dpo", SUITE, pairs_from=("ratings", "verifier"))
    assert both.rows == 2  # a1's pair once (deduplicated), a3's success against its failure
    assert any(r["rejected"][0]["content"] == "I will reset it for you." for r in read(both.path))


# --- GRPO and OpenAI ---------------------------------------------------------------------------


def test_grpo_rows_carry_what_the_rewards_need(ws):
    ensure_demo_suite(ws)
    record = datasets.export(ws, "grpo", DEMO_SUITE)
    tasks = {t.id: t for t in ws.repo.find(Task, suite=DEMO_SUITE, split="train")}
    for row in read(record.path):
        task = tasks[row["task_id"]]
        assert row["prompt"] == datasets.prompt_for(task)
        assert row["expected_name"] == task.expected.name
        assert json.loads(row["expected_arguments"]) == task.expected.arguments
        tool = next(t for t in json.loads(row["tools"]) if t["name"] == task.expected.name)
        assert row["required_args"] == tool["parameters"].get("required", [])


def test_openai_formats(ws, tmp_path):
    tasks = mini_suite(ws, tmp_path)
    sft = read(datasets.export(ws, "openai-sft", SUITE, out_path=tmp_path / "o.jsonl").path)
    row = next(r for r in sft if r["messages"][0]["content"] == tasks["a2"].input[0].content)
    call = row["messages"][-1]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "unlock_account"
    assert json.loads(call["function"]["arguments"]) == {"username": "bnovak"}
    assert {t["function"]["name"] for t in row["tools"]} == {"reset_password", "unlock_account"}
    assert all(t["type"] == "function" for t in row["tools"])
    prefer(ws, tasks["a1"], "x", call_text("reset_password", username="akhan"), "B")
    dpo = read(datasets.export(ws, "openai-dpo", SUITE).path)
    assert dpo == [{"input": {"messages": datasets.prompt_for(tasks["a1"])},
                    "preferred_output": [{"role": "assistant", "content": call_text("reset_password", username="akhan")}],
                    "non_preferred_output": [{"role": "assistant", "content": "x"}]}]


def test_secrets_in_the_environment_are_never_written(ws, tmp_path, monkeypatch):
    secret = "sk-test-1234567890abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    lines = [("s1", f"my key is {secret}, reset akhan", "reset_password", {"username": "akhan"})]
    mini_suite(ws, tmp_path, lines=lines)
    record = datasets.export(ws, "sft", SUITE)
    text = Path(record.path).read_text()
    assert secret not in text and "[redacted]" in text


def test_check_file_names_the_bad_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "chosen": []}) + "\n")
    with pytest.raises(ValueError, match="row 2: chosen must be a non-empty list"):
        datasets.check_file(path, "dpo")
    with pytest.raises(ValueError, match=r"needs the column\(s\) \['messages'\]"):
        datasets.check_file(path, "sft")


# --- the real tokenizer renders every export as TRL does ---------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from agentlearn.models import chat_model_dir

    folder = tmp_path_factory.getbasetemp() / "shared-models"
    folder.mkdir(exist_ok=True)
    return AutoTokenizer.from_pretrained(chat_model_dir(folder))


def test_trl_reads_every_export(ws, tmp_path, tokenizer):
    from datasets import load_dataset
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    tasks = mini_suite(ws, tmp_path)
    prefer(ws, tasks["a1"], "x", call_text("reset_password", username="akhan"), "B")
    for kind, keys in (("sft", {"text"}), ("dpo", {"prompt", "chosen", "rejected"}), ("grpo", {"prompt"})):
        record = datasets.export(ws, kind, SUITE)
        ds = load_dataset("json", data_files=record.path, split="train",
                          cache_dir=str(Settings(home=tmp_path).home / "cache"))
        example = ds[0]
        assert is_conversational(example)
        rendered = maybe_apply_chat_template(example, tokenizer)
        assert keys <= set(rendered) and all(isinstance(rendered[k], str) for k in keys)
        assert f"<|im_start|>system\n{DEFAULT_INSTRUCTION}" in rendered.get("text", rendered.get("prompt"))
