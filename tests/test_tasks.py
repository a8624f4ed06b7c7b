"""Importing suites: validation, all-or-nothing writes, splits, tools, references and the demo suite."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from agentlearn import tasks
from agentlearn.graders import schema_valid
from agentlearn.settings import Settings
from agentlearn.toolcall import tool_by_name
from agentlearn.workspace import open_workspace
from storage.records import Exemplar, Message, Suite, Task, ToolCall
from tests.seed import ME

RESET = {"type": "function", "function": {
    "name": "reset_password", "description": "Reset a password.",
    "parameters": {"type": "object", "properties": {"username": {"type": "string"}}, "required": ["username"]},
}}


def line(sample_id: str, name: str = "reset_password", args: dict | None = None, **extra) -> dict:
    return {"sample_id": sample_id, "input": [{"role": "user", "content": f"please help {sample_id}"}],
            "expected_function_call": {"name": name, "arguments": args if args is not None else {"username": "u"}},
            **extra}


def write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def store_sizes(ws) -> tuple[int, int, int]:
    return ws.repo.count(Task), ws.repo.count(Exemplar), ws.repo.count(Suite)


def test_import_stores_tasks_suite_and_references(ws, tmp_path):
    rows = [line(f"s{i}", args={"username": f"user{i}"}) for i in range(20)]
    suite = tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", rows), "mine", heldout=0.5)
    assert suite.name == "mine" and suite.heldout_fraction == 0.5 and suite.source.endswith("a.jsonl")
    loaded = tasks.load_tasks(ws, "mine")
    assert [t.sample_id for t in loaded] == [f"s{i}" for i in range(20)]  # file order
    assert {t.id for t in loaded} == {f"mine:s{i}" for i in range(20)}
    assert loaded[3].expected == ToolCall(name="reset_password", arguments={"username": "user3"})
    train = tasks.load_tasks(ws, "mine", split="train")
    held = tasks.load_tasks(ws, "mine", split="heldout")
    assert len(train) + len(held) == 20 and train and held
    assert all(t.split == tasks.split_for(t.sample_id, 0.5) for t in loaded)
    refs = ws.repo.find(Exemplar, suite="mine")
    assert sorted(e.task_id for e in refs) == sorted(t.id for t in train)
    assert all(e.kind == "reference" and e.tool == "reset_password" and e.active for e in refs)
    ref = ws.repo.get(Exemplar, tasks.reference_id("mine", train[0].sample_id))
    assert ref.call == train[0].expected and ref.input == train[0].input
    assert [s.name for s in tasks.suites(ws)] == ["mine"]


def test_reimport_updates_in_place(ws, tmp_path):
    path = write(tmp_path / "a.jsonl", [line(f"s{i}") for i in range(10)])
    tasks.import_jsonl(ws, path, "mine")
    before = {t.id: t.created for t in tasks.load_tasks(ws, "mine")}
    sizes = store_sizes(ws)
    write(path, [line(f"s{i}", args={"username": "changed"}) for i in range(10)])
    tasks.import_jsonl(ws, path, "mine")
    assert store_sizes(ws) == sizes
    after = tasks.load_tasks(ws, "mine")
    assert {t.id: t.created for t in after} == before
    assert all(t.expected.arguments == {"username": "changed"} for t in after)


def test_reimport_with_more_heldout_retires_leaking_references(ws, tmp_path):
    path = write(tmp_path / "a.jsonl", [line(f"s{i}") for i in range(30)])
    tasks.import_jsonl(ws, path, "mine", heldout=0.0)
    assert len(ws.repo.find(Exemplar, suite="mine", active=True)) == 30
    tasks.import_jsonl(ws, path, "mine", heldout=0.5)
    train_ids = {t.id for t in tasks.load_tasks(ws, "mine", split="train")}
    assert {e.task_id for e in ws.repo.find(Exemplar, suite="mine", active=True)} == train_ids
    assert 0 < len(train_ids) < 30


@pytest.mark.parametrize("rows, message", [
    ([line("a"), line("b"), '{"sample_id": "c", "input": [', line("d")], "line 3: invalid JSON"),
    ([line("a"), {"sample_id": "b", "input": [{"role": "user", "content": "hi"}]}],
     "line 2: expected_function_call: Field required"),
    ([line("a"), line("b"), {**line("c"), "input": [{"role": 7, "content": "hi"}]}],
     "line 3: input.0.role: Input should be a valid string"),
    ([line("a"), {**line("b"), "input": [{"role": "user", "content": ["x"]}]}], "line 2: input.0.content"),
    ([line("a"), {**line("b"), "input": []}], "line 2: input: List should have at least 1 item"),
    ([line("a"), line("b"), line("a")], "line 3: duplicate sample_id 'a' (first on line 1)"),
    ([line("a"), "[1, 2]"], "line 2: a task must be a JSON object, not list"),
    ([line("a"), line("b", args=[1])], "line 2: expected_function_call.arguments"),
    ([line("a", tools=[RESET]), line("b", name="unlock", tools=[RESET])],
     "line 2: expected_function_call 'unlock' is not one of the tools offered (reset_password)"),
    ([line("a", tools=[{"name": "reset_password", "parameters": {"type": "nope"}}])],
     "line 1: tool 'reset_password': 'parameters' is not a valid JSON schema"),
    ([], "no tasks in the file"),
])
def test_bad_files_raise_and_leave_the_store_unchanged(ws, tmp_path, rows, message):
    tasks.import_jsonl(ws, write(tmp_path / "good.jsonl", [line("x"), line("y")]), "mine")
    sizes = store_sizes(ws)
    bad = write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ValueError) as err:
        tasks.import_jsonl(ws, bad, "mine")
    assert message in str(err.value)
    assert str(bad) in str(err.value) or not rows
    assert store_sizes(ws) == sizes
    assert [t.sample_id for t in tasks.load_tasks(ws, "mine")] == ["x", "y"]


def test_bad_arguments_to_import(ws, tmp_path):
    path = write(tmp_path / "a.jsonl", [line("a")])
    with pytest.raises(ValueError, match="heldout must be a fraction"):
        tasks.import_jsonl(ws, path, "mine", heldout=1.5)
    with pytest.raises(FileNotFoundError, match="no such task file"):
        tasks.import_jsonl(ws, tmp_path / "missing.jsonl", "mine")
    with pytest.raises(ValueError, match=r"line 1: expected_function_call 'reset_password' is not one of the tools"):
        tasks.import_jsonl(ws, path, "mine", tools=[{"name": "other"}])
    with pytest.raises(ValueError, match="no suite named 'nope'"):
        tasks.load_tasks(ws, "nope")
    tasks.import_jsonl(ws, path, "mine")
    with pytest.raises(ValueError, match="split must be one of"):
        tasks.load_tasks(ws, "mine", split="test")


def test_split_is_deterministic_and_roughly_proportional():
    ids = [f"task-{i}" for i in range(2000)]
    first = [tasks.split_for(i, 0.3) for i in ids]
    assert first == [tasks.split_for(i, 0.3) for i in ids]
    assert 0.26 < first.count("heldout") / len(ids) < 0.34
    assert all(tasks.split_for(i, 0.0) == "train" for i in ids[:100])
    assert all(tasks.split_for(i, 1.0) == "heldout" for i in ids[:100])
    # A bigger held-out fraction only moves tasks from train to held-out, never back.
    assert all(tasks.split_for(i, 0.5) == "heldout" for i, s in zip(ids, first, strict=True) if s == "heldout")


def test_tools_are_derived_from_expected_calls(ws, tmp_path):
    rows = [
        line("a", args={"username": "x", "days": 3, "tags": ["a", "b"]}),
        line("b", args={"username": "y", "days": 2.5, "force": True}),
        line("c", name="unlock", args={"username": "z"}),
    ]
    tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", rows), "derived")
    tools = tasks.tools_for(ws, "derived")
    assert [t["name"] for t in tools] == ["reset_password", "unlock"]
    params = tool_by_name(tools, "reset_password")["parameters"]
    assert params["properties"] == {"username": {"type": "string"}, "days": {"type": "number"},
                                    "tags": {"type": "array", "items": {"type": "string"}},
                                    "force": {"type": "boolean"}}
    assert params["required"] == ["username", "days"]
    for t in tasks.load_tasks(ws, "derived"):
        assert t.tools == tools
        assert schema_valid("", t.expected, t.expected, t.tools).score == 1.0


def test_line_tools_and_given_tools_are_normalised(ws, tmp_path):
    rows = [line("a", tools=[RESET]), line("b"), line("c", name="unlock", args={"username": "q"})]
    unlock = {"name": "unlock", "description": "Unlock.", "parameters": {"type": "object", "properties": {}}}
    tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", rows), "mixed", tools=[unlock])
    a, b, c = tasks.load_tasks(ws, "mixed")
    assert a.tools == [RESET["function"]]
    assert b.tools == c.tools == [unlock, RESET["function"]]  # the file's tool set
    assert a.tags == [] and b.tags == []


def test_tags_from_lines_or_from_the_sample_id_category(ws, tmp_path):
    rows = [line("password_12"), line("server-outage-3"), line("x", tags=["accounts"]), line("42")]
    tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", rows), "tags")
    assert [t.tags for t in tasks.load_tasks(ws, "tags")] == [["password"], ["server-outage"], ["accounts"], []]


def test_store_on_disk_is_read_back_by_a_new_workspace(ws, tmp_path):
    tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [line(f"s{i}") for i in range(6)]), "disk")
    again = open_workspace(Settings(home=ws.settings.home))
    assert [t.id for t in tasks.load_tasks(again, "disk")] == [t.id for t in tasks.load_tasks(ws, "disk")]
    assert tasks.tools_for(again, "disk") == tasks.tools_for(ws, "disk")


def test_demo_suite(ws):
    suite = tasks.ensure_demo_suite(ws)
    assert suite.name == tasks.DEMO_SUITE and suite.source == "builtin"
    all_tasks = tasks.load_tasks(ws, tasks.DEMO_SUITE)
    assert len(all_tasks) >= 72
    per_tool = Counter(t.expected.name for t in all_tasks)
    assert len(per_tool) >= 9 and len(suite.tools) >= 9
    assert max(per_tool.values()) <= 2 * min(per_tool.values())  # roughly balanced
    for tool in suite.tools:
        params = tool["parameters"]
        assert tool["description"] and params["required"] and params["properties"]
    for t in all_tasks:
        g = schema_valid("", t.expected, t.expected, t.tools)
        assert g.score == 1.0, f"{t.sample_id}: {g.reason}"
        assert t.tags and t.input[-1].content
    roles = {m.role for t in all_tasks for m in t.input}
    assert {"user", "system", "technician"} <= roles
    splits = Counter(t.split for t in all_tasks)
    assert splits["train"] >= 20 and splits["heldout"] >= 20
    assert ws.repo.count(Exemplar) == splits["train"]
    # A second call finds the suite and writes nothing.
    version = ws.repo.version(Task)
    assert tasks.ensure_demo_suite(ws).id == suite.id and ws.repo.version(Task) == version


def test_demo_values_are_in_the_text():
    """Every expected string argument (other than enum choices) can be read from the conversation."""
    tools = {t["name"]: t for t in tasks.demo_tools()}
    with (tasks.DATA_DIR / "demo_suite.jsonl").open() as f:
        for raw in f:
            row = json.loads(raw)
            text = " ".join(m["content"] for m in row["input"]).lower()
            call = row["expected_function_call"]
            props = tools[call["name"]]["parameters"]["properties"]
            for key, value in call["arguments"].items():
                if key == "date" and "today is" in text:
                    continue  # relative dates ("tomorrow") are meant to be worked out
                if isinstance(value, str) and "enum" not in props[key]:
                    assert value.lower() in text, f"{row['sample_id']}: {key}={value!r} not in the text"


# --- instructions, cards, edits, argument kinds ------------------------------------------------

RULES = "You answer for the facilities team. Book rooms only through the tools."


def with_system(sample_id: str, content: str = RULES, **extra) -> dict:
    row = line(sample_id, **extra)
    row["input"] = [{"role": "system", "content": content}, *row["input"]]
    return row


def test_a_shared_leading_system_message_becomes_the_instruction(ws, tmp_path):
    suite = tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [with_system(f"s{i}") for i in range(8)]), "sys")
    assert suite.instruction == RULES
    assert all([m.role for m in t.input] == ["user"] for t in tasks.load_tasks(ws, "sys"))
    assert all(e.input[0].role == "user" for e in ws.repo.find(Exemplar, suite="sys"))


@pytest.mark.parametrize("rows", [
    [with_system("a"), line("b")],  # not every line
    [with_system("a"), with_system("b", content="Another rule.")],  # not the same content
    [with_system("a"), {**line("b"), "input": [{"role": "system", "content": RULES}]}],  # a lone system alert
])
def test_other_system_messages_stay_task_messages(ws, tmp_path, rows):
    suite = tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", rows), "sys")
    assert suite.instruction == ""
    assert [t.input[0].role for t in tasks.load_tasks(ws, "sys")] == ["system", rows[1]["input"][0]["role"]]


def test_reimport_keeps_a_persons_instruction_unless_a_new_one_is_given(ws, tmp_path):
    path = write(tmp_path / "a.jsonl", [with_system(f"s{i}") for i in range(4)])
    tasks.import_jsonl(ws, path, "sys")
    tasks.update_suite(ws, "sys", instruction="  A person's rules.  ", description="rooms", who=ME)
    again = tasks.import_jsonl(ws, path, "sys")
    assert again.instruction == "A person's rules." and again.description == "rooms"
    assert tasks.import_jsonl(ws, path, "sys", instruction="Given at import.").instruction == "Given at import."
    assert tasks.update_suite(ws, "sys", instruction="", who=ME).instruction == ""  # back to the default


def test_reimport_keeps_the_queue_rubric_and_model_people_set(ws, tmp_path):
    from storage.records import Suite

    path = write(tmp_path / "a.jsonl", [with_system(f"s{i}") for i in range(4)])
    tasks.import_jsonl(ws, path, "sys")
    ws.repo.update(Suite, "sys", lambda s: s.model_copy(update={
        "overlap": 3, "error_categories": ["wrong room"], "guidelines": "# Rooms", "adapter": "a1"}))
    again = tasks.import_jsonl(ws, path, "sys")
    assert (again.overlap, again.error_categories, again.guidelines, again.adapter) == (3, ["wrong room"], "# Rooms",
                                                                                       "a1")


KIND_ROWS = [
    line(f"t{i}", name="escalate", args={
        "ticket": f"INC-{100 + i}", "priority": ["low", "high"][i % 2], "notify": i % 3 == 0,
        "reason": ["users report that mail is slow", "the printer keeps jamming on floor two",
                   "a laptop will not boot after the update", "nobody can reach the wiki"][i % 4]},
        input=[{"role": "user", "content": f"Ticket INC-{100 + i} needs escalating, something broke."}])
    for i in range(8)
]
ESCALATE = {"name": "escalate", "description": "Escalate a ticket.", "parameters": {"type": "object", "properties": {
    "ticket": {"type": "string"}, "priority": {"type": "string"}, "notify": {"type": "boolean"},
    "reason": {"type": "string"}, "team": {"type": "string", "enum": ["network", "desktop"]}}}}


def test_import_infers_argument_kinds(ws, tmp_path):
    suite = tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", KIND_ROWS), "kinds", tools=[ESCALATE])
    assert suite.arg_kinds == {"escalate": {"ticket": "extractive", "priority": "categorical", "notify": "categorical",
                                            "reason": "free_text", "team": "categorical"}}
    assert suite.arg_kind_overrides == {}


def test_a_card_sets_description_instruction_tools_and_kinds(ws, tmp_path):
    card = tmp_path / "card.yaml"
    card.write_text("name: from-card\ndescription: Escalations\ninstruction: |\n  You escalate tickets.\n"
                    "tools:\n  - " + json.dumps(ESCALATE) + "\narg_kinds:\n  escalate:\n    ticket: free_text\n"
                    "    priority: categorical\n")
    suite = tasks.import_suite(ws, write(tmp_path / "a.jsonl", KIND_ROWS), card=card, who=ME)
    assert (suite.name, suite.description, suite.instruction) == ("from-card", "Escalations", "You escalate tickets.\n")
    assert suite.tools == [ESCALATE]
    assert suite.arg_kind_overrides == {"escalate": {"ticket": "free_text"}}  # the inferred kind needs no override
    from agentlearn import arg_kinds

    assert arg_kinds.kinds_for(suite)["escalate"]["ticket"] == "free_text"
    as_json = tmp_path / "card.json"
    as_json.write_text(json.dumps({"name": "other", "instruction": "Be brief."}))
    renamed = tasks.import_suite(ws, tmp_path / "a.jsonl", "named", card=as_json, instruction="Given wins.", who=ME)
    assert (renamed.name, renamed.instruction) == ("named", "Given wins.")


@pytest.mark.parametrize("text, message", [
    ("name: x\ncolour: red\n", "colour: Extra inputs are not permitted"),
    ("- a\n- b\n", "a suite card is a mapping"),
    ("name: [unclosed\n", "not valid YAML"),
    ("arg_kinds:\n  nope:\n    a: free_text\n", "arg_kinds: no tool 'nope' in the suite (tools: escalate)"),
    ("arg_kinds:\n  escalate:\n    colour: free_text\n", "arg_kinds: tool 'escalate' has no argument 'colour'"),
    ("arg_kinds:\n  escalate:\n    reason: prose\n", "arg_kinds: escalate.reason: unknown argument kind 'prose'"),
])
def test_bad_cards_are_refused_and_store_nothing(ws, tmp_path, text, message):
    card = tmp_path / "card.yaml"
    card.write_text(text)
    with pytest.raises(ValueError, match=re.escape(message)):
        tasks.import_suite(ws, write(tmp_path / "a.jsonl", KIND_ROWS), "bad", card=card, who=ME)
    assert store_sizes(ws) == (0, 0, 0)


def test_update_suite_kinds_and_errors(ws, tmp_path):
    tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", KIND_ROWS), "kinds", tools=[ESCALATE])
    suite = tasks.update_suite(ws, "kinds", kind_overrides={"escalate": {"reason": "extractive"}}, who=ME)
    assert suite.arg_kind_overrides == {"escalate": {"reason": "extractive"}}
    assert tasks.get_suite(ws, "kinds").arg_kind_overrides == suite.arg_kind_overrides
    # Re-import infers again and keeps the person's override.
    assert tasks.import_jsonl(ws, tmp_path / "a.jsonl", "kinds").arg_kind_overrides == suite.arg_kind_overrides
    # Setting the inferred kind again removes the override.
    assert tasks.update_suite(ws, "kinds", kind_overrides={"escalate": {"reason": "free_text"}}, who=ME).arg_kind_overrides == {}
    with pytest.raises(ValueError, match="no suite named 'nope'"):
        tasks.update_suite(ws, "nope", instruction="x", who=ME)
    with pytest.raises(ValueError, match="has no argument 'colour'"):
        tasks.update_suite(ws, "kinds", kind_overrides={"escalate": {"colour": "free_text"}}, who=ME)
    assert tasks.parse_kind_override("files.read.path=extractive") == ("files.read", "path", "extractive")
    for bad in ("escalate=free_text", "escalate.reason", "escalate.reason=prose"):
        with pytest.raises(ValueError):
            tasks.parse_kind_override(bad)


def test_cli_import_show_and_edit(ws, tmp_path, capsys):
    from agentlearn import cli

    path = write(tmp_path / "a.jsonl", [with_system(f"s{i}", name="escalate", args=r["expected_function_call"]
                                                    ["arguments"]) for i, r in enumerate(KIND_ROWS)])
    assert cli.main(["tasks", "import", str(path), "--suite", "esc", "--description", "Escalations"]) == 0
    assert "instruction: own" in capsys.readouterr().out
    assert cli.main(["suite", "edit", "esc", "--instruction", "Escalate carefully.", "--kind",
                     "escalate.priority=free_text"]) == 0
    assert "1 argument kind(s) set by a person" in capsys.readouterr().out
    assert cli.main(["suite", "show", "esc", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["instruction"] == "Escalate carefully." and card["description"] == "Escalations"
    assert card["arg_kinds"]["escalate"]["priority"] == "free_text"
    assert card["kind_overrides"] == {"escalate": {"priority": "free_text"}}
    assert cli.main(["suite", "show", "esc"]) == 0
    text = capsys.readouterr().out
    assert "Escalate carefully." in text and "- escalate(" in text and "escalate.priority\tfree_text" in text
    assert cli.main(["suite", "edit", "esc", "--kind", "escalate.priority=prose"]) == 2
    assert "unknown argument kind 'prose'" in capsys.readouterr().err
    assert cli.main(["suite", "edit", "esc"]) == 2
    assert cli.main(["tasks", "import", str(path)]) == 2
    assert "the suite needs a name" in capsys.readouterr().err


def test_non_utf8_file_names_the_file_and_line(ws, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(line("a")).encode() + b"\n" + json.dumps(line("caf\u00e9"), ensure_ascii=False).encode("latin-1") + b"\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}, line 2: not UTF-8 text")):
        tasks.import_jsonl(ws, path, "enc")
    assert store_sizes(ws) == (0, 0, 0)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(line("a")).encode() + b"\n")
    assert tasks.import_jsonl(ws, bom, "bom").name == "bom"


def test_deeply_nested_lines_name_the_line(ws, tmp_path):
    deep = '{"sample_id": "d", "input": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    with pytest.raises(ValueError, match=r"line 2: JSON nested too deeply"):
        tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [line("a"), deep]), "deep")
    nested: dict = {}
    for _ in range(100):
        nested = {"n": nested}
    with pytest.raises(ValueError, match=r"line 1: nested more than 64 levels deep \(at expected_function_call.arguments.n.n"):
        tasks.import_jsonl(ws, write(tmp_path / "b.jsonl", [line("a", args=nested)]), "deep")


def test_schemas_with_outside_refs_are_refused_and_boolean_subschemas_work(ws, tmp_path):
    for ref in ("http://example.com/s.json", "file:///etc/passwd"):
        remote = {"name": "reset_password", "parameters": {"type": "object", "properties": {"username": {"$ref": ref}}}}
        with pytest.raises(ValueError, match=re.escape(f"$ref {ref!r} points outside the schema")):
            tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [line("a")]), "refs", tools=[remote])
    loose = {"name": "reset_password", "parameters": {"type": "object", "properties": {"username": True, "x": False}}}
    suite = tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [line("a", args={"username": "a"}), line("b", args={"username": "b"})]), "bools",
                               tools=[loose])
    assert suite.arg_kinds == {"reset_password": {"username": "extractive"}}
    from agentlearn.graders import grade
    from agentlearn.prompts import tool_signature

    assert tool_signature(suite.tools[0]).startswith("- reset_password(username?: any, x?: any)")
    task = tasks.load_tasks(ws, "bools")[0]
    assert grade("", task.expected, task.expected, task.tools).success


def test_derived_schemas_require_what_every_example_has_in_first_seen_order(ws, tmp_path):
    rows = [line("a", args={"b": 1, "a": "x", "c": None}), line("b", args={"z": True, "a": "y", "b": 2}),
            line("c", args={"a": "z", "b": 3, "c": "w"})]
    tool = tasks.derive_tools([tasks.ToolCall(**r["expected_function_call"]) for r in rows])[0]
    assert list(tool["parameters"]["properties"]) == ["b", "a", "c", "z"]
    assert tool["parameters"]["required"] == ["b", "a"]


def test_text_that_is_not_text_or_that_postgres_cannot_keep_names_the_line(ws, tmp_path):
    rows = [line(f"s{i}") for i in range(60)]
    rows[14] = json.dumps(line("s14")).replace("please help", "please \\ud800 help")  # json.dumps escapes it
    with pytest.raises(ValueError, match=r"line 15: input.0.content holds \\ud800, half of a surrogate pair"):
        tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", rows), "lone")
    rows[14] = line("s14", args={"user\u0000name": "u"})
    with pytest.raises(ValueError, match=r"line 15: the key of expected_function_call.arguments.user\x00name holds "
                                         r"a NUL character \(\\u0000\)"):
        tasks.import_jsonl(ws, write(tmp_path / "b.jsonl", rows), "nul")
    with pytest.raises(ValueError, match=r"the instruction: the value holds a NUL"):
        tasks.import_jsonl(ws, write(tmp_path / "c.jsonl", [line("a")]), "nul", instruction="be\x00good")
    assert store_sizes(ws) == (0, 0, 0)


def test_deep_tool_schemas_and_huge_numbers_name_the_line(ws, tmp_path):
    schema: dict = {"type": "string"}
    for _ in range(150):
        schema = {"type": "object", "properties": {"x": schema}}
    tool = {"name": "reset_password", "parameters": schema}
    with pytest.raises(ValueError, match=r"line 2: nested more than 64 levels deep \(at tools.0.parameters.properties"):
        tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [line("a"), line("b", tools=[tool])]), "deep")
    with pytest.raises(ValueError, match=r"tools for suite 'deep': tools: nested more than 64 levels deep"):
        tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [line("a")]), "deep", tools=[tool])
    huge = '{"sample_id": "h", "input": [{"role": "user", "content": "x"}], "expected_function_call": ' \
           '{"name": "f", "arguments": {"n": ' + "9" * 5000 + '}}}'
    with pytest.raises(ValueError, match=r"line 3: a number with 5000 digits \(at most 100\)"):
        tasks.import_jsonl(ws, write(tmp_path / "b.jsonl", [line("a"), line("b"), huge]), "big")
    for text, why in (("NaN", "NaN is not a JSON number"), ("1e999", "the number 1e999 is too large for a float")):
        row = json.dumps(line("c", args={"n": 1})).replace('"n": 1', f'"n": {text}')
        with pytest.raises(ValueError, match=rf"line 1: {why}"):
            tasks.import_jsonl(ws, write(tmp_path / "c.jsonl", [row]), "big")
    assert store_sizes(ws) == (0, 0, 0)


def test_a_megabyte_sample_id_imports_fast_and_tags_are_read_off_ids(ws, tmp_path):
    import time

    assert [tasks._tags(tasks._Line.model_validate(line(s))) for s in
            ("password_12", "abc12", "a1b2", "abc__12", "_12", "12", "abc", "x.7", "vpn-3")] == \
        [["password"], ["abc"], ["a1b"], ["abc_"], [], [], [], ["x"], ["vpn"]]
    long_ids = ["a" * 1_000_000 + "_" + "1" * 16, "1" * 1_000_000 + "a", "a" + "_1" * 500_000 + "x"]
    start = time.perf_counter()
    tasks.import_jsonl(ws, write(tmp_path / "a.jsonl", [line(s) for s in long_ids]), "long")
    assert time.perf_counter() - start < 5  # the old backtracking pattern needed hours for one such id
    assert {len(t.tags[0]) if t.tags else 0 for t in tasks.load_tasks(ws, "long")} == {1_000_000, 0}


# --- a full disk, a read-only home: one-line errors, nothing half-written ----------------------------


def _cli(home: Path, *argv: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    env = {**__import__("os").environ, "AGENTLEARN_HOME": str(home)}
    env.pop("AGENTLEARN_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-m", "agentlearn", *argv], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_a_full_disk_fails_the_import_whole_in_one_line(small_disk, tmp_path):
    home = small_disk / "home"
    rows = [line(f"s{i}", args={"username": "u" * 20_000}) for i in range(40)]  # ~1.6 MB of tasks and references
    code, _, err = _cli(home, "tasks", "import", str(write(tmp_path / "a.jsonl", rows[:2])), "--suite", "small")
    assert code == 0, err
    (small_disk / "filler").write_bytes(b"x" * 700_000)  # leaves room for some shards, not for all
    code, _, err = _cli(home, "tasks", "import", str(write(tmp_path / "b.jsonl", rows)), "--suite", "big")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: cannot write {home / 'store'}") and "No space left on device" in err
    code, out, err = _cli(home, "tasks", "list")
    assert code == 0 and out.splitlines() == ["small\t2 tasks (2 train, 0 heldout)\t1 tools\t"], (out, err)
    leftovers = [p for p in home.rglob("*") if p.name.endswith((".tmp", ".pending")) or p.parent.name == ".txn"]
    assert leftovers == []


def test_a_read_only_home_reads_and_refuses_writes_in_one_line(small_disk, tmp_path):
    from tests.conftest import remount

    home = small_disk / "home"
    assert _cli(home, "tasks", "import", str(write(tmp_path / "a.jsonl", [line("a"), line("b")])), "--suite", "s")[0] == 0
    remount(small_disk, "ro")
    code, out, err = _cli(home, "tasks", "list")
    assert code == 0 and out.startswith("s\t2 tasks"), err
    code, _, err = _cli(home, "tasks", "import", str(write(tmp_path / "b.jsonl", [line("c")])), "--suite", "t")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Read-only file system" in err, err
    assert str(home / "store") in err
    code, out, err = _cli(home, "backup", "--out", str(tmp_path / "copy"))  # a copy only reads the store
    assert code == 0, err
    from storage import TinyDBRepository

    assert TinyDBRepository(tmp_path / "copy" / "store").count(Task) == 2


def test_an_unreachable_database_is_one_line_naming_the_host_not_the_password(monkeypatch, capsys):
    from agentlearn import cli

    monkeypatch.setenv("AGENTLEARN_DATABASE_URL", "postgresql://me:secret@127.0.0.1:1/x")
    assert cli.main(["tasks", "list"]) == 2
    text = capsys.readouterr().err
    assert text.startswith("error: cannot connect to PostgreSQL at postgresql://me:***@127.0.0.1:1/x: ")
    assert len(text.strip().splitlines()) == 1 and "secret" not in text


def test_the_request_is_the_last_word_of_whoever_the_agent_serves():
    said = [Message(role="system", content="You are a shop's support agent."),
            Message(role="customer", content="Where is order 77?"),
            Message(role="assistant", content="Which address?"),
            Message(role="customer", content="12 High Street."),
            Message(role="tool", content="{}")]
    assert tasks.request_text(said) == "12 High Street."
    assert tasks.request_text([Message(role="user", content="Reset akhan")]) == "Reset akhan"
    assert tasks.request_text([Message(role="system", content="Disk full on db-2")]) == "Disk full on db-2"  # an alert
    assert tasks.request_text([]) == ""
