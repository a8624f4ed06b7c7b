"""The table of embedded models: choosing one (settings, children, training), its prompt layout, and
Gemma 3 270M for real (converted once per session from its chunk packages, generating under the grammar)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentlearn import models, processes, prompts
from agentlearn.settings import Settings
from agentlearn.tasks import DEMO_SUITE, ensure_demo_suite, load_tasks
from agentlearn.training import config as jc
from agentlearn.training import jobs, runner
from agentlearn.workspace import open_workspace
from storage.records import Exemplar, Message, Task, ToolCall, Trajectory
from tests.conftest import link_shared_models

TOOLS = [{"name": "restart_service", "description": "Restart a service on a host.",
          "parameters": {"type": "object", "properties": {"host": {"type": "string"}, "service": {"type": "string"}},
                         "required": ["host", "service"]}},
         {"name": "open_ticket", "description": "Open a ticket.",
          "parameters": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}}]


# --- choosing a model ---------------------------------------------------------------------------


def test_the_table_names_each_model_once_with_a_known_prompt_format():
    assert models.DEFAULT_LOCAL_MODEL == "smollm2-135m"
    labels = [m.label for m in models.EMBEDDED_MODELS.values()]
    assert len(set(labels)) == len(labels)
    for model in models.EMBEDDED_MODELS.values():
        assert model.prompt_format in prompts.PROMPT_FORMATS
    assert models.embedded_model("gemma3-270m").prompt_format == "completion"  # a base model: no chat turns
    assert prompts.chat_template("chat") == prompts.CHAT_TEMPLATE_FILE.read_text()
    assert prompts.chat_template("completion") == prompts.COMPLETION_TEMPLATE
    assert prompts.response_template("chat") is prompts.CHATML_TOOL_CALLS and prompts.response_template("completion") is None
    with pytest.raises(ValueError, match="unknown embedded model 'llama'; choose one of smollm2-135m, gemma3-270m"):
        models.embedded_model("llama")
    with pytest.raises(ValueError, match="unknown prompt format 'xml'"):
        prompts.chat_template("xml")


def test_agentlearn_local_model_selects_the_model_and_its_label(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTLEARN_HOME", str(tmp_path))
    monkeypatch.delenv("AGENTLEARN_BACKEND", raising=False)
    monkeypatch.delenv("AGENTLEARN_LOCAL_MODEL", raising=False)
    assert Settings.from_env().local_model == "smollm2-135m"
    assert Settings.from_env().model_label == "SmolLM2-135M-Instruct"
    monkeypatch.setenv("AGENTLEARN_LOCAL_MODEL", " Gemma3-270M ")
    s = Settings.from_env()
    assert s.local_model == "gemma3-270m" and s.model_label == "gemma-3-270m"
    assert models.converted_dir(s.models_dir, s.local_model) == tmp_path / "models" / "gemma-3-270m"
    monkeypatch.setenv("AGENTLEARN_LOCAL_MODEL", "gpt2")
    with pytest.raises(ValueError, match="AGENTLEARN_LOCAL_MODEL must be one of smollm2-135m, gemma3-270m, not 'gpt2'"):
        Settings.from_env()


def test_children_and_jobs_use_the_workspace_model(ws, monkeypatch):
    monkeypatch.delenv("AGENTLEARN_LOCAL_MODEL", raising=False)
    gemma = open_workspace(ws.settings.with_(local_model="gemma3-270m"))
    assert processes.child_env(gemma)["AGENTLEARN_LOCAL_MODEL"] == "gemma3-270m"
    assert processes.child_env(ws)["AGENTLEARN_LOCAL_MODEL"] == "smollm2-135m"
    config = jc.preset("sft", "cpu-tiny", dataset_path="x.jsonl")
    assert config.base_model == ""
    assert jobs.with_base_model(gemma, config).base_model == "gemma3-270m"  # stamped into the job's config
    folder = jc.preset("sft", "cpu-tiny", base_model="/some/model")
    assert jobs.with_base_model(gemma, folder).base_model == "/some/model"  # a folder given stays


def test_a_job_resolves_an_embedded_model_name_to_its_converted_folder(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(models, "chat_model_dir", lambda d, name: seen.append(name) or d / name)
    assert runner.base_model_dir(jc.preset("sft", base_model="gemma3-270m"), tmp_path) == str(tmp_path / "gemma3-270m")
    monkeypatch.setenv("AGENTLEARN_LOCAL_MODEL", "gemma3-270m")
    assert runner.base_model_dir(jc.preset("sft"), tmp_path) == str(tmp_path / "gemma3-270m")  # the selected one
    assert runner.base_model_dir(jc.preset("sft", base_model=str(tmp_path)), tmp_path) == str(tmp_path)
    assert seen == ["gemma3-270m", "gemma3-270m"]
    from agentlearn.training import preflight

    assert preflight.setting_problems(jc.preset("sft", base_model="gemma3-270m")) == []
    assert preflight.setting_problems(jc.preset("sft", base_model="gemma9")) == [
        "base_model gemma9 is neither an embedded model (smollm2-135m, gemma3-270m) nor a model folder (no config.json)"]


def test_an_adapter_is_served_only_on_the_model_it_was_trained_on(tmp_path):
    from agentlearn.llm import check_adapter_base

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/x/models/gemma-3-270m"}))
    check_adapter_base(str(adapter), "gemma3-270m")
    with pytest.raises(ValueError, match="trained on gemma-3-270m, but the embedded model is SmolLM2-135M-Instruct; "
                                         "select gemma3-270m"):
        check_adapter_base(str(adapter), "smollm2-135m")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/my/own/model"}))
    check_adapter_base(str(adapter), "smollm2-135m")  # a model of the user's own: not ours to judge


def test_a_converted_smollm2_is_served_with_tool_calls_in_both_directions(shared_models, monkeypatch):
    """The converted folder carries the tool-call chat template and a response template, which `transformers
    serve` reads: a served model sees the calls it made earlier and answers with native tool calls. A folder
    converted before either is brought up to date in place, without converting again."""
    from transformers import AutoTokenizer

    target = models.chat_model_dir(shared_models)
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: pytest.fail("converted the GGUF file a second time"))
    config_path = target / models.TOKENIZER_CONFIG
    config = json.loads(config_path.read_text())
    config.pop("response_template")
    config_path.write_text(json.dumps(config))
    (target / models.TEMPLATE_FILE).write_text("{{ 'an older layout' }}")
    assert models.chat_model_dir(shared_models) == target

    tokenizer = AutoTokenizer.from_pretrained(target)
    calls = [{"type": "function", "function": {"name": "restart_service", "arguments": {"host": "web01", "service": "nginx"}}}]
    chat = [{"role": "user", "content": "web01 is down, restart nginx"},
            {"role": "assistant", "content": "", "tool_calls": calls},
            {"role": "tool", "content": "restarted"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert ('<|im_start|>assistant\n<tool_call>{"name": "restart_service", "arguments": {"host": "web01", '
            '"service": "nginx"}}</tool_call><|im_end|>\n<|im_start|>tool\nrestarted<|im_end|>\n') in text
    answer = '<tool_call>{"name": "open_ticket", "arguments": {"summary": "nginx restarted"}}</tool_call><|im_end|>'
    parsed = tokenizer.parse_response(answer, prefix=text)
    assert parsed["tool_calls"] == [{"type": "function", "function": {"name": "open_ticket",
                                                                      "arguments": {"summary": "nginx restarted"}}}]
    assert tokenizer.parse_response("It is up again.<|im_end|>", prefix=text) == {"role": "assistant",
                                                                                  "content": "It is up again."}


# --- Gemma 3 270M, for real ---------------------------------------------------------------------


def _shot(request: str, name: str, **arguments: str) -> Exemplar:
    return Exemplar(suite="s", task_id=request, kind="manual", input=[Message(role="user", content=request)],
                    call=ToolCall(name=name, arguments=arguments), tool=name)


@pytest.mark.slow
def test_gemma_is_converted_once_from_its_chunk_packages(gemma_model_dir, shared_models, monkeypatch):
    target = gemma_model_dir
    assert target == shared_models / "gemma-3-270m"
    config = json.loads((target / "config.json").read_text())
    assert config["model_type"].startswith("gemma3") and "quantization_config" not in config
    assert (target / ".converted").read_text() == "gemma-3-270m.gguf"
    assert (target / models.TEMPLATE_FILE).read_text() == prompts.COMPLETION_TEMPLATE
    leftovers = [p.name for p in shared_models.iterdir() if "gemma" in p.name and not p.name.endswith(".lock")]
    assert leftovers == ["gemma-3-270m"]  # neither the reassembled GGUF (250 MB) nor a .partial folder is kept

    def no_reconvert(*args):
        raise AssertionError("converted the GGUF file a second time")

    monkeypatch.setattr(models, "_convert_gguf", no_reconvert)
    weights = (target / "model.safetensors").stat().st_mtime_ns
    (target / models.TEMPLATE_FILE).write_text("{{ 'an older layout' }}")
    assert models.chat_model_dir(shared_models, "gemma3-270m") == target
    assert (target / models.TEMPLATE_FILE).read_text() == prompts.COMPLETION_TEMPLATE  # the layout follows prompts.py
    assert (target / "model.safetensors").stat().st_mtime_ns == weights


@pytest.mark.slow
def test_gemma_sees_a_plain_completion_layout(gemma_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gemma_model_dir)
    task = Task(suite="s", sample_id="1", split="heldout", input=[Message(role="user", content="web01 is down, restart nginx")],
                tools=TOOLS, expected=ToolCall(name="restart_service", arguments={}))
    shots = [_shot("Open a ticket: printer jam", "open_ticket", summary="printer jam")]
    chat = [m.model_dump() for m in prompts.build_prompt(task, shots)]
    text = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    system = prompts.system_prompt(prompts.DEFAULT_INSTRUCTION, TOOLS)
    assert text == (f"<bos>{system}\n\n"
                    "Request: Open a ticket: printer jam\n"
                    'Call: <tool_call>{"name": "open_ticket", "arguments": {"summary": "printer jam"}}</tool_call>\n\n'
                    "Request: web01 is down, restart nginx\n"
                    "Call: ")
    assert "<start_of_turn>" not in text  # no chat turns of an instruction-tuned model
    # Training renders the same layout: a prompt with its generation cue is a prefix of the whole row.
    row = chat + [{"role": "assistant", "content": '<tool_call>{"name": "restart_service"}</tool_call>'}]
    whole = tokenizer.apply_chat_template(row, tokenize=False)
    assert whole.startswith(text) and whole.endswith("</tool_call>\n\n")


@pytest.mark.slow
def test_gemma_writes_parseable_calls_under_the_grammar(gemma_model_dir, shared_models, tmp_path):
    """The agent on the selected Gemma: every answer is one call of an offered tool, stored under its label."""
    from agentlearn.agent import run_tasks
    from agentlearn.methods import RunOptions

    ws = open_workspace(Settings(home=link_shared_models(tmp_path / "home", shared_models),
                                 local_model="gemma3-270m", max_new_tokens=96))
    ensure_demo_suite(ws)
    tasks = load_tasks(ws, DEMO_SUITE, "heldout")[:4]
    run_tasks(ws, tasks, RunOptions(method="exemplars", k=2, exemplar_mode="bm25"))
    stored = ws.repo.find(Trajectory, suite=DEMO_SUITE)
    assert len(stored) == 4 and {t.model for t in stored} == {"gemma-3-270m"}
    offered = {t.id: {tool["name"] for tool in t.tools} for t in tasks}
    for t in stored:
        assert t.tool_call is not None, t.output
        assert t.tool_call.name in offered[t.task_id], t.output
    assert Path(ws.chat().model_dir).resolve() == gemma_model_dir.resolve()  # home/models links the shared folder
