"""BFCL multi-turn on the installed bfcl-eval data: environments, tools, ground-truth strings and grading.

Tasks and episodes are built by hand from BFCL's own question and possible-answer files, as an
importer would: question turns -> input/turns, ground truth -> turn_calls, initial_config ->
environment (every involved class, with its initial state or none).
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from agentlearn.suites import environments
from agentlearn.suites.multi_turn import call_text, grade_episode, parse_calls
from agentlearn.suites.schema import json_schema, tool_schema
from storage.records import Message, Step, Task, ToolCall, Trajectory

DATA = resources.files("bfcl_eval") / "data"


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _tasks(category: str) -> dict[str, Task]:
    answers = {row["id"]: row["ground_truth"] for row in _jsonl(DATA / "possible_answer" / f"BFCL_v4_{category}.json")}
    tasks = {}
    for entry in _jsonl(DATA / f"BFCL_v4_{category}.json"):
        turn_calls = [[call for text in turn for call in parse_calls(text)] for turn in answers[entry["id"]]]
        tasks[entry["id"]] = Task(
            suite=f"bfcl_{category}", sample_id=entry["id"], split="train",
            input=[Message(**m) for m in entry["question"][0]],
            turns=[[Message(**m) for m in turn] for turn in entry["question"][1:]],
            expected=next(c for turn in turn_calls for c in turn), turn_calls=turn_calls,
            environment={name: entry["initial_config"].get(name, {}) for name in entry["involved_classes"]})
    return tasks


@pytest.fixture(scope="module")
def base() -> dict[str, Task]:
    return _tasks("multi_turn_base")


def episode(task: Task, turn_calls: list[list[ToolCall]] | None = None) -> Trajectory:
    """An episode that makes these calls (the task's reference by default), one call per step."""
    calls = task.turn_calls if turn_calls is None else turn_calls
    # Stored and read back, as every episode is: tuples become lists, as in any agent's JSON.
    steps = [Step(calls=[c], turn=t) for t, turn in enumerate(calls) for c in turn]
    trajectory = Trajectory(task_id=task.id, suite=task.suite, split=task.split, steps=steps)
    return Trajectory.model_validate_json(trajectory.model_dump_json())


def replace(task: Task, turn: int, index: int, *new: ToolCall) -> list[list[ToolCall]]:
    calls = [list(t) for t in task.turn_calls]
    calls[turn][index:index + 1] = list(new)
    return calls


# --- schema ---------------------------------------------------------------------------------------

def test_json_schema_maps_bfcl_types():
    schema = json_schema({"type": "dict", "required": ["a"], "properties": {
        "a": {"type": "float", "description": "x", "default": 1.5},
        "b": {"type": "tuple", "items": {"type": "dict", "properties": {"c": {"type": "any"}}}},
        "d": {"type": "String", "optional": True, "enum": ["p", "q"]}}})
    assert schema == {"type": "object", "required": ["a"], "properties": {
        "a": {"type": "number", "description": "x", "default": 1.5},
        "b": {"type": "array", "items": {"type": "object", "properties": {"c": {}}}},
        "d": {"type": "string", "enum": ["p", "q"]}}}
    with pytest.raises(ValueError, match="must be an object"):
        json_schema(["dict"])
    with pytest.raises(ValueError, match="'name'"):
        tool_schema({"description": "no name"})


def test_every_bfcl_function_document_becomes_a_valid_json_schema():
    docs = {path.name: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            for path in (DATA / "multi_turn_func_doc").iterdir() if path.name.endswith(".json")}
    for name in ("simple_python", "simple_java", "simple_javascript", "multiple", "parallel_multiple",
                 "live_simple", "live_multiple", "live_parallel_multiple", "irrelevance"):
        docs[name] = [doc for entry in _jsonl(DATA / f"BFCL_v4_{name}.json") for doc in entry["function"]]
    assert sum(map(len, docs.values())) > 5000
    meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
    for name, group in docs.items():
        for doc in group:
            tool = tool_schema(doc)
            assert tool["name"] == doc["name"] and tool["parameters"]["type"] == "object"
            assert _types(tool["parameters"]) <= JSON_TYPES, doc["name"]
            if name.endswith(".json") or "java" in name:  # the meta-schema check costs ms: a sample of kinds
                meta.validate(tool["parameters"])


JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean"}


def _types(schema: dict) -> set[str]:
    """Every "type" in a converted schema, through properties and items."""
    nested = [*schema.get("properties", {}).values(), *([schema["items"]] if "items" in schema else [])]
    return {schema["type"]} if "type" in schema else set() | set().union(*map(_types, nested))


# --- environments ---------------------------------------------------------------------------------

def test_registry_holds_the_multi_turn_classes_and_each_one_starts():
    assert set(environments.NAMES) == {"GorillaFileSystem", "MathAPI", "MessageAPI", "TicketAPI", "TradingBot",
                                       "TravelAPI", "TwitterAPI", "VehicleControlAPI"}
    for name in environments.NAMES:
        assert type(environments.create(name, {})).__name__ == name


@pytest.mark.parametrize("name", ["WebSearchAPI", "os", "subprocess.Popen", "bfcl_eval.utils:x", ""])
def test_unknown_environment_is_refused(name):
    with pytest.raises(ValueError, match=f"unknown environment {name!r}: BFCL environments are GorillaFileSystem"):
        environments.create(name, {})
    with pytest.raises(ValueError, match="unknown environment"):
        environments.tools_for([name])


def test_unknown_environment_in_a_task_is_refused_by_the_grader(base):
    task = base["multi_turn_base_0"].model_copy(update={"environment": {"builtins": {}}})
    with pytest.raises(ValueError, match="unknown environment 'builtins'"):
        grade_episode(task, episode(task))


def test_create_loads_the_state_and_call_runs_on_the_instance_that_has_the_method(base):
    state = base["multi_turn_base_0"].environment
    before = json.dumps(state, sort_keys=True)
    instances = {name: environments.create(name, s) for name, s in state.items()}
    assert json.loads(environments.call(instances, ToolCall(name="ls", arguments={}))) == {
        "current_directory_content": ["document", "archive"]}
    environments.call(instances, ToolCall(name="cd", arguments={"folder": "document"}))
    environments.call(instances, ToolCall(name="rm", arguments={"file_name": "final_report.pdf"}))
    assert json.loads(environments.call(instances, ToolCall(name="ls", arguments={}))) == {
        "current_directory_content": ["previous_report.pdf"]}
    tweets = environments.call(instances, ToolCall(name="get_user_tweets", arguments={"username": "analyst_pro"}))
    assert tweets.startswith("[{'id': 0, 'username': 'analyst_pro'")  # a list result as BFCL writes it: str()
    assert json.dumps(state, sort_keys=True) == before  # the task's state is copied, never changed
    math = {"MathAPI": environments.create("MathAPI", {})}
    assert json.loads(environments.call(math, ToolCall(name="add", arguments={"a": 2, "b": 3}))) == {"result": 5}
    with pytest.raises(ValueError, match="unknown function 'ls': no tool of that name in MathAPI"):
        environments.call(math, ToolCall(name="ls"))
    with pytest.raises(ValueError, match="unknown function '_load_scenario'"):
        environments.call(instances, ToolCall(name="_load_scenario", arguments={"scenario": {}}))
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        environments.call(math, ToolCall(name="add", arguments={"a": 1, "b": 2, "x": 3}))


def test_an_environment_refusing_a_call_in_its_own_words_is_a_tool_error(base):
    """BFCL's classes return {"error": ...} instead of raising: the result is an error, its text left as BFCL wrote it."""
    from agentlearn import tools
    from storage.records import Suite

    task = base["multi_turn_base_0"]
    task = task.model_copy(update={"tools": environments.tools_for(list(task.environment))})  # as imported
    with tools.Toolbox() as box:
        episode_tools = box.episode(tools.bindings_for(Suite(name=task.suite), task), task)
        listed = episode_tools.run(ToolCall(name="ls", arguments={}))
        episode_tools.run(ToolCall(name="cd", arguments={"folder": "document"}))
        again = episode_tools.run(ToolCall(name="touch", arguments={"file_name": "final_report.pdf"}))
    assert not listed.error and json.loads(listed.content) == {"current_directory_content": ["document", "archive"]}
    assert again.error and json.loads(again.content) == {
        "error": "touch: cannot touch 'final_report.pdf': File exists"}


def test_tools_for_gives_every_documented_function(base):
    tools = environments.tools_for(["GorillaFileSystem", "MathAPI"])
    names = [t["name"] for t in tools]
    assert {"cd", "mv", "grep", "add", "mean"} <= set(names) and len(names) == len(set(names))
    instance_methods = set(environments.methods(environments.create("GorillaFileSystem", {})))
    assert {t["name"] for t in environments.tools_for(["GorillaFileSystem"])} <= instance_methods
    mean = next(t for t in tools if t["name"] == "mean")
    assert mean["parameters"]["properties"]["numbers"] == {
        "type": "array", "items": {"type": "number"}, "description": "List of numbers to calculate the mean of. "}


# --- parse_calls ----------------------------------------------------------------------------------

def test_parse_calls_reads_keywords_positionals_literals_and_lists():
    assert parse_calls("mv(source='a.txt', destination='b')") == [
        ToolCall(name="mv", arguments={"source": "a.txt", "destination": "b"})]
    assert parse_calls("sort('final_report.pdf')") == [ToolCall(name="sort", arguments={"file_name": "final_report.pdf"})]
    assert parse_calls("[ls(a=True), mean(numbers=[1, -2.5, 3e2])]") == [
        ToolCall(name="ls", arguments={"a": True}), ToolCall(name="mean", arguments={"numbers": [1, -2.5, 300.0]})]
    assert parse_calls(" tail(file_name='log.txt',lines=20) ") == [
        ToolCall(name="tail", arguments={"file_name": "log.txt", "lines": 20})]
    assert call_text(parse_calls("grep(file_name='f',pattern='x')")[0]) == "grep(file_name='f', pattern='x')"


@pytest.mark.parametrize(("text", "message"), [
    ("cd(folder=__import__('os').system('true'))", "is not a literal value"),
    ("os.system('ls')", "not a call of a named function"),
    ("cd(**{'folder': 'x'})", "'\\*\\*' arguments are not allowed"),
    ("cd(folder='x'", "not a Python call"),
    ("folder", "not a call of a named function"),
    ("cd('a', 'b')", "cd takes 1 arguments, 2 were given positionally"),
    ("cd('a', folder='b')", "cd: argument 'folder' is given twice"),
    ("cd(folder={[1]: 2})", "is not a literal value"),
    ("cd(folder='\x00')\x00", "not a Python call"),
    ("no_such_tool('a')", "unknown function 'no_such_tool'"),
])
def test_parse_calls_refuses_what_is_not_a_literal_call(text, message):
    with pytest.raises(ValueError, match=message):
        parse_calls(text)


# --- grading --------------------------------------------------------------------------------------

def test_the_ground_truth_episode_succeeds(base):
    for task in list(base.values())[:20]:
        verdict = grade_episode(task, episode(task))
        assert verdict.success, (task.sample_id, verdict.reason)
        assert verdict.reward == 1.0 and verdict.scores == {f"turn_{t}": 1.0 for t in range(len(task.turn_calls))}
        assert verdict.reason.startswith("Correct: every turn")


def test_a_missing_call_fails_its_turn_by_the_response_check(base):
    task = base["multi_turn_base_0"]  # turn 3 ends with diff(...): no state change, only its result
    verdict = grade_episode(task, episode(task, replace(task, 3, 3)))
    assert not verdict.success
    assert verdict.scores == {"turn_0": 1.0, "turn_1": 1.0, "turn_2": 1.0, "turn_3": 0.0} and verdict.reward == 0.75
    assert verdict.reason.startswith("Failed turn 4: the results of the reference calls "
                                     "diff(file_name1='final_report.pdf', file_name2='previous_report.pdf') "
                                     "are not among the agent's")


def test_a_wrong_argument_fails_its_turn_by_the_state_check(base):
    task = base["multi_turn_base_0"]
    wrong = ToolCall(name="mkdir", arguments={"dir_name": "tmp"})
    verdict = grade_episode(task, episode(task, replace(task, 0, 1, wrong)))
    assert not verdict.success and verdict.scores["turn_0"] == 0.0 and verdict.reward == 0.0
    assert verdict.reason.startswith("Failed turn 1: the GorillaFileSystem state differs from the reference's (root:")


def test_a_wrong_argument_that_changes_only_a_result_fails_that_turn(base):
    task = base["multi_turn_base_1"]  # turn 2: grep(file_name='log.txt', pattern='Error'), which changes nothing
    wrong = ToolCall(name="grep", arguments={"file_name": "log.txt", "pattern": "Warning"})
    verdict = grade_episode(task, episode(task, replace(task, 2, 1, wrong)))
    assert [verdict.scores[f"turn_{t}"] for t in range(4)] == [1.0, 1.0, 0.0, 1.0] and verdict.reward == 0.5
    assert verdict.reason.startswith("Failed turn 3: the results of the reference calls "
                                     "grep(file_name='log.txt', pattern='Error') are not among the agent's")


def test_a_call_that_raises_is_reported_by_the_grader(base):
    task = base["multi_turn_base_1"]
    bad = [ToolCall(name="mv", arguments={"from": "log.txt", "to": "archive"}), ToolCall(name="rm_rf", arguments={})]
    verdict = grade_episode(task, episode(task, replace(task, 1, 1, *bad)))
    assert not verdict.success and verdict.scores["turn_1"] == 0.0
    assert verdict.reason.startswith("Failed turn 2: the GorillaFileSystem state differs")
    assert "the agent's call mv(from='log.txt', to='archive') raised TypeError: " in verdict.reason
    assert "unexpected keyword argument 'from'" in verdict.reason
    assert "the agent's call rm_rf() raised ValueError: unknown function 'rm_rf'" in verdict.reason


def test_a_turn_without_calls_fails_and_calls_from_an_earlier_turn_count(base):
    task = base["multi_turn_base_1"]
    silent = [list(t) for t in task.turn_calls]
    silent[2] = []
    verdict = grade_episode(task, episode(task, silent))
    assert verdict.scores["turn_2"] == 0.0
    assert verdict.reason == "Failed turn 3: no calls, where the reference makes 2."
    # BFCL compares a turn's reference results with every result so far: a call made early still counts.
    early = [list(t) for t in task.turn_calls]
    early[0] = [*early[0], ToolCall(name="cd", arguments={"folder": "workspace"})]
    assert grade_episode(task, episode(task, early)).success


def test_a_turn_whose_reference_calls_nothing_is_replayed_but_not_checked():
    tasks = _tasks("multi_turn_miss_func")
    task = tasks["multi_turn_miss_func_0"]
    assert task.turn_calls[2] == []
    assert grade_episode(task, episode(task)).success
    # A call made in the empty turn still changes the state the next turns are compared on.
    extra = [list(t) for t in task.turn_calls]
    extra[2] = [ToolCall(name="touch", arguments={"file_name": "stray.txt"})]
    verdict = grade_episode(task, episode(task, extra))
    assert verdict.scores["turn_2"] == 1.0 and verdict.scores["turn_3"] == 0.0
    assert verdict.reason.startswith("Failed turn 4: the GorillaFileSystem state differs")


def test_a_task_without_turn_calls_cannot_be_graded(base):
    task = base["multi_turn_base_0"].model_copy(update={"turn_calls": []})
    with pytest.raises(ValueError, match="multi_turn_base_0: no reference calls per turn"):
        grade_episode(task, episode(task))


def test_long_context_categories_load_their_environments_long(base):
    task = _tasks("multi_turn_long_context")["multi_turn_long_context_1"]
    assert environments.long_context(task) and not environments.long_context(base["multi_turn_base_1"])
    assert environments.long_context(base["multi_turn_base_1"].model_copy(update={"tags": ["long_context"]}))
    listing = {}
    for name, t in (("long", task), ("base", base["multi_turn_base_1"])):
        instances = environments.for_task(t)
        for folder in ("workspace", "archive"):
            environments.call(instances, ToolCall(name="cd", arguments={"folder": folder}))
        listing[name] = json.loads(environments.call(instances, ToolCall(name="ls", arguments={"a": True})))
    # An empty innermost folder is filled with many files in long context.
    assert listing["base"]["current_directory_content"] == [] and len(listing["long"]["current_directory_content"]) > 10
    assert grade_episode(task, episode(task)).success
