"""The tool-call grammar's schemas: cleaned for xgrammar, strings bounded by the suite's own values."""

from __future__ import annotations

import pytest

from agentlearn import grammar
from storage.records import ToolCall

TOOL = {"name": "open_ticket", "description": "",
        "parameters": {"type": "object", "properties": {
            "title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
            "level": {"type": "string", "enum": ["low", "high"]}, "count": {"type": "integer"},
            "ref": {"$ref": "http://example.invalid/schema.json"}, "any": True},
            "required": ["title", "gone"]}}


def test_limits_come_from_the_longest_reference_value_with_a_margin():
    calls = [ToolCall(name="open_ticket", arguments={"title": "x" * 10, "tags": ["ab", "abcdef"]}),
             ToolCall(name="open_ticket", arguments={"title": "x" * 20})]
    limits = grammar.value_limits(calls)
    assert limits["open_ticket.title"] == 20 * 1.5 + 8 and limits["open_ticket.tags"] == 6 * 1.5 + 8
    assert limits["*"] == limits["open_ticket.title"]  # arguments never seen: the suite's longest
    assert grammar.value_limits([])["*"] <= grammar.MAX_STRING_CHARS
    assert limits["open_ticket.tags[]"] == int(2 * 1.5) + 1 and limits["*[]"] == limits["open_ticket.tags[]"]
    assert grammar.value_limits([])["*[]"] <= grammar.MAX_ARRAY_ITEMS


def test_an_array_is_bounded_by_the_longest_one_seen_and_the_grammar_refuses_one_item_more():
    """A model that repeats one item inside an array stops at the bound instead of the token budget."""
    calls = [ToolCall(name="open_ticket", arguments={"tags": ["a", "b"]})]
    [tool] = grammar.with_value_limits([TOOL], grammar.value_limits(calls))
    tags = tool["parameters"]["properties"]["tags"]
    assert tags["maxItems"] == 4 and tags["items"]["maxLength"] == grammar.value_limits(calls)["open_ticket.tags"]
    assert "maxItems" not in tool["parameters"]["properties"]["title"]


def test_bounded_tools_carry_max_length_on_strings_and_string_items_only():
    [tool] = grammar.with_value_limits([TOOL], {"open_ticket.title": 12, "*": 30})
    props = tool["parameters"]["properties"]
    assert props["title"]["maxLength"] == 12 and props["tags"]["items"]["maxLength"] == 30
    assert "maxLength" not in props["level"] and "maxLength" not in props["count"]
    assert "maxLength" not in TOOL["parameters"]["properties"]["title"]  # the suite's tool is not changed


def test_the_call_schema_drops_references_and_keeps_only_known_required_keys():
    schema = grammar.call_schema([TOOL])
    args = schema["properties"]["arguments"]
    assert schema["properties"]["name"] == {"const": "open_ticket"}
    assert args["properties"]["ref"] == {} and args["properties"]["any"] == {}  # no $ref is ever followed
    assert args["required"] == ["title"]
    both = grammar.call_schema([TOOL, {**TOOL, "name": "close_ticket"}])
    assert [o["properties"]["name"]["const"] for o in both["anyOf"]] == ["open_ticket", "close_ticket"]


@pytest.mark.slow
def test_the_compiled_grammar_refuses_an_array_past_its_bound(real_ws):
    import xgrammar as xgr

    from agentlearn.llm import grammar_compiler
    from agentlearn.models import chat_model_dir

    tool = {"name": "tag_ticket", "parameters": {"type": "object", "required": ["tags"], "properties": {
        "tags": {"type": "array", "items": {"type": "string"}}}}}
    calls = [ToolCall(name="tag_ticket", arguments={"tags": ["a", "b"]})]
    tools = grammar.with_value_limits([tool], grammar.value_limits(calls))  # tags: at most 4 items
    compiled = grammar_compiler(str(chat_model_dir(real_ws.settings.models_dir))).compile(tools)

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled)
        return all(matcher.accept_string(ch) for ch in text)

    head = '{"name": "tag_ticket", "arguments": {"tags": ['
    assert accepts(head + '"a", "b", "c", "d"]}}')
    assert not accepts(head + '"a", "b", "c", "d", "e"]}}')


@pytest.mark.slow
def test_the_compiled_grammar_keeps_the_schemas_key_order(real_ws):
    """Arguments come in the order the suite's schema lists them (as its exemplars write them), not sorted."""
    import xgrammar as xgr

    from agentlearn.llm import grammar_compiler
    from agentlearn.models import chat_model_dir

    tool = {"name": "t", "parameters": {"type": "object", "required": ["title", "tags"], "properties": {
        "title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}}}}
    compiled = grammar_compiler(str(chat_model_dir(real_ws.settings.models_dir))).compile([tool])

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled)
        return all(matcher.accept_string(ch) for ch in text)

    assert accepts('{"name": "t", "arguments": {"title": "p", "tags": ["a"]}}')
    assert not accepts('{"name": "t", "arguments": {"tags": ["a"], "title": "p"}}')


def test_a_step_grammar_allows_up_to_max_calls_tagged_calls_or_an_answer(real_ws):
    import xgrammar as xgr

    from agentlearn.llm import grammar_compiler
    from agentlearn.models import chat_model_dir
    from tests.data.toy_tools import TOOLS

    compiler = grammar_compiler(str(chat_model_dir(real_ws.settings.models_dir)))

    def accepts(compiled, text: str) -> bool:
        matcher = xgr.GrammarMatcher(compiled)
        return matcher.accept_string(text)

    call = '<tool_call>{"name": "find_user", "arguments": {"name": "ada"}}</tool_call>'
    two = compiler.compile_step(TOOLS, 2)
    assert accepts(two, call) and accepts(two, call + "\n" + call) and accepts(two, "The password is reset.")
    assert not accepts(two, (call + "\n") * 2 + "<tool_call>")  # a third call
    assert not accepts(two, '<tool_call>{"name": "rm", ')  # a tool not offered
    must_call = compiler.compile_step(TOOLS, 1, may_answer=False)
    assert accepts(must_call, call) and not accepts(must_call, "The")


def test_integers_get_at_most_15_digits_and_keep_their_own_tighter_bounds():
    args = grammar.call_schema([TOOL])["properties"]["arguments"]["properties"]
    assert args["count"] == {"type": "integer", "minimum": -grammar.MAX_INTEGER, "maximum": grammar.MAX_INTEGER}
    tool = {"name": "t", "parameters": {"type": "object", "properties": {
        "page": {"type": "integer", "minimum": 0.5, "maximum": 99.5}, "share": {"type": "number"}}}}
    props = grammar.call_schema([tool])["properties"]["arguments"]["properties"]
    assert (props["page"]["minimum"], props["page"]["maximum"]) == (1, 99)  # a float bound rounds inward
    assert props["share"] == {"type": "number"}  # numbers stay free: 1.6e-19 needs its exponent


@pytest.mark.slow
def test_the_compiled_grammar_stops_an_integer_at_15_digits(real_ws):
    """The model that writes zeros after "1" is made to close the number, so its call still parses."""
    import xgrammar as xgr

    from agentlearn.llm import grammar_compiler
    from agentlearn.models import chat_model_dir

    tool = {"name": "odds", "parameters": {"type": "object", "required": ["total"], "properties": {
        "total": {"type": "integer"}}}}
    compiled = grammar_compiler(str(chat_model_dir(real_ws.settings.models_dir))).compile([tool])

    def accepts(text: str) -> bool:
        return xgr.GrammarMatcher(compiled).accept_string(text)

    head = '{"name": "odds", "arguments": {"total": '
    assert accepts(head + "-" + "9" * 15 + "}}") and accepts(head + "52}}")
    assert not accepts(head + "1" + "0" * 15)


def test_an_answer_repeats_a_call_only_when_its_last_call_was_written_before_word_for_word():
    one, two = '<tool_call>{"name": "a", "arguments": {"x": 1}}</tool_call>', \
        '<tool_call>{"name": "a", "arguments": {"x": 2}}</tool_call>'
    assert grammar.repeats_a_call(f"{one}\n{two}\n{one}")
    assert not grammar.repeats_a_call(f"{one}\n{two}") and not grammar.repeats_a_call(one)
    assert not grammar.repeats_a_call(f"{one}\n{one[:-3]}")  # the repeat is not closed yet


@pytest.mark.slow
def test_a_repeated_call_leaves_only_the_end_to_write(real_ws):
    """With the real tokenizer and the compiled step grammar: after a call written a second time, every
    token but the end is masked, so the answer stops there instead of repeating up to its most calls."""
    import torch

    from agentlearn.llm import grammar_compiler, load_local
    from agentlearn.models import chat_model_dir

    model_dir = str(chat_model_dir(real_ws.settings.models_dir))
    _, tokenizer = load_local(model_dir)
    compiler = grammar_compiler(model_dir)
    tool = {"name": "area", "parameters": {"type": "object", "required": ["side"], "properties": {
        "side": {"type": "integer"}}}}
    stops = sorted({*compiler.stop_token_ids, tokenizer.eos_token_id})

    def masks_after(text: str) -> torch.Tensor:
        processor = grammar.logits_processor([compiler.compile_step([tool], 8, False)], end_on_repeat=[True],
                                             stop_ids=stops, decode=lambda ids: tokenizer.decode(ids))
        prompt, answer = [tokenizer.eos_token_id], tokenizer(text, add_special_tokens=False)["input_ids"]
        scores = None
        for n in range(len(answer) + 1):
            scores = processor(torch.tensor([prompt + answer[:n]]), torch.zeros(1, compiler.info.vocab_size))
        return torch.isfinite(scores[0]).nonzero().flatten()

    call = lambda side: f'<tool_call>{{"name": "area", "arguments": {{"side": {side}}}}}</tool_call>'  # noqa: E731
    assert set(masks_after(f"{call(3)}\n{call(3)}").tolist()) <= set(stops)
    allowed = set(masks_after(f"{call(3)}\n{call(4)}").tolist())
    assert allowed & set(stops) and allowed - set(stops)  # a third call may still follow two different ones


@pytest.mark.slow
def test_an_adapters_tokenizer_keeps_the_tags_of_an_answer_of_several_calls(real_ws):
    """An SFT adapter's tokenizer holds <tool_call> as a special token; decoding without special tokens read an
    answer of three calls as one bare call (every parallel task failed with the adapter)."""
    from transformers import AutoTokenizer

    from agentlearn.llm import decode_answer
    from agentlearn.models import chat_model_dir
    from agentlearn.training.runner import add_special_tokens

    tokenizer = AutoTokenizer.from_pretrained(str(chat_model_dir(real_ws.settings.models_dir)))
    add_special_tokens(tokenizer)
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<tool_call>")  # one special token, as the adapter writes it
    assert decode_answer(tokenizer, ids + [tokenizer.eos_token_id, tokenizer.pad_token_id]) == text
