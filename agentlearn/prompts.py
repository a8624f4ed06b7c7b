"""Every prompt the agent sees is built here: the suite's instruction, the tools, exemplars, insights, reflections.

The suite supplies the instruction (its role and rules); a suite without one gets DEFAULT_INSTRUCTION,
which names no domain. The output format is appended to every instruction, so a suite's own text never
has to explain `<tool_call>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentlearn.episode_text import shorten, transcript
from agentlearn.toolcall import format_tool_calls
from storage.records import Exemplar, Message, Suite, Task

# How prompt budgets are counted, everywhere (the playbook, episode exemplars, answer lengths): about
# 2.5 characters a token, fewer than typical English so that JSON's short pieces are not undercounted.
CHARS_PER_TOKEN = 2.5


def approx_tokens(text: str) -> int:
    """Tokens a text is counted as under CHARS_PER_TOKEN."""
    return int(len(text) / CHARS_PER_TOKEN + 0.999)

DEFAULT_INSTRUCTION = (
    "You are an agent that acts by calling tools. Read the conversation and call the one tool that "
    "does what it asks."
)
FORMAT_RULES = (
    "Answer with exactly one tool call, written as\n"
    '<tool_call>{"name": "<tool name>", "arguments": {<argument>: <value>, ...}}</tool_call>\n'
    "Use only these tools. Take identifiers, names, numbers and dates from the conversation as written."
)

STEP_FORMAT_RULES = (
    "Work in steps. At each step either call tools, each call written as\n"
    '<tool_call>{{"name": "<tool name>", "arguments": {{<argument>: <value>, ...}}}}</tool_call>\n'
    "({calls}), and read what they answered in the next message; or, once the request is done, answer "
    "the user in plain words without a tool call.\n"
    "Use only these tools. Take identifiers, names, numbers and dates from the conversation or from earlier "
    "results as written."
)


# A one-answer task that may take several calls: all of them at once, no steps, no words.
CALLS_FORMAT_RULES = (
    "Answer with {calls}, each written as\n"
    '<tool_call>{{"name": "<tool name>", "arguments": {{<argument>: <value>, ...}}}}</tool_call>\n'
    "Make one call for each thing the request asks.\n"
    "Use only these tools. Take identifiers, names, numbers and dates from the conversation as written."
)

DECLINE_FORMAT_RULES = (
    "If one of these tools does what the request asks, answer with {calls}, written as\n"
    '<tool_call>{{"name": "<tool name>", "arguments": {{<argument>: <value>, ...}}}}</tool_call>\n'
    "If none of them does, do not call a tool: say so in plain words.\n"
    "Take identifiers, names, numbers and dates from the conversation as written."
)


def _calls_text(max_calls: int) -> str:
    return "one call" if max_calls == 1 else f"at most {max_calls} calls, one a line"


def step_format_rules(max_calls: int) -> str:
    """The output format of an episode's steps: up to `max_calls` calls, or an answer in words."""
    return STEP_FORMAT_RULES.format(calls=_calls_text(max_calls))


def answer_format_rules(max_calls: int, may_decline: bool) -> str:
    """The output format of a one-answer task: exactly one call, up to `max_calls` calls, or (for a suite whose
    requests may need no call) those calls or a plain-words answer saying no tool fits."""
    if may_decline:
        return DECLINE_FORMAT_RULES.format(calls=_calls_text(max_calls))
    return FORMAT_RULES if max_calls == 1 else CALLS_FORMAT_RULES.format(calls=_calls_text(max_calls))


def instruction_for(suite: Suite | None) -> str:
    """The suite's instruction, or the domain-free default."""
    text = (suite.instruction if suite else "").strip()
    return text or DEFAULT_INSTRUCTION


def tool_signature(tool: dict[str, Any]) -> str:
    """One compact line per tool: small models follow a signature better than a JSON schema dump.

    Required arguments come first; optional ones are marked with `?`.
    """
    params = tool.get("parameters", {}) or {}
    required = [k for k in params.get("required", []) if k in (params.get("properties") or {})]
    props = params.get("properties") or {}
    order = required + [k for k in props if k not in required]
    args = []
    for name in order:
        spec = props[name] if isinstance(props[name], dict) else {}
        kind = spec.get("type", "any")
        if isinstance(kind, list):
            kind = "|".join(str(k) for k in kind)
        if "enum" in spec:
            kind = "|".join(str(v) for v in spec["enum"])
        args.append(f"{name}{'' if name in required else '?'}: {kind}")
    desc = (tool.get("description") or "").strip()
    return f"- {tool['name']}({', '.join(args)}){': ' + desc if desc else ''}"


def system_prompt(instruction: str, tools: list[dict[str, Any]], extra: str = "", rules: str = FORMAT_RULES) -> str:
    """The system message: instruction, output format (`rules`), the tools as signatures, then insights/reflections."""
    lines = [instruction.strip(), rules, "", "Tools:", *(tool_signature(t) for t in tools)]
    if extra:
        lines += ["", extra]
    return "\n".join(lines)


PLAYBOOK_HEADER = ("The following are lessons gathered on earlier runs of these tasks (best first in each "
                   "section). Use them where they apply:")


def playbook_block(sections: list[tuple[str, list[str]]]) -> str:
    """The playbook for the system message: bullets under their section ("" when there are none)."""
    parts = [PLAYBOOK_HEADER]
    for section, texts in sections:
        texts = [t.strip() for t in texts if t and t.strip()]
        if texts:
            parts += [f"{section.capitalize()}:", *(f"- {t}" for t in texts)]
    return "\n".join(parts) if len(parts) > 1 else ""


def tools_added_message(tools: list[dict[str, Any]], text: str) -> str:
    """A user turn that brings tools held back until now: their signatures, then the turn's own words."""
    listed = "\n".join(tool_signature(t) for t in tools)
    return f"New tools you can call now:\n{listed}" + (f"\n\n{text}" if text.strip() else "")


def task_messages(messages: list[Message]) -> list[Message]:
    """A task's conversation as the user turn the agent answers.

    A one-message request stays as it is. A longer conversation (a technician asking back, a system
    alert) becomes one transcript with each speaker named: the agent's own turns are tool calls
    only, so a technician's words must not look like something the agent said (a small model then
    answers in chat instead of calling a tool).
    """
    if len(messages) == 1 and messages[0].role == "user":
        return [Message(role="user", content=messages[0].content)]
    return [Message(role="user", content="\n".join(f"{_speaker(m.role)}: {m.content}" for m in messages))]


def _speaker(role: str) -> str:
    return role.replace("_", " ").capitalize()


def build_prompt(task: Task, shots: list[Exemplar], instruction: str = DEFAULT_INSTRUCTION,
                 extra: str = "", tools: list[dict[str, Any]] | None = None,
                 rules: str = FORMAT_RULES) -> list[Message]:
    """The full prompt: system message, exemplars as (conversation, tool call) turns, then the task.

    Shots come in the order given (order_shots decides it). Episode exemplars (whole successful episodes)
    are shown as compact transcripts in the system message (episodes_block), after `extra`; single-call
    shots stay (conversation, tool call) turns.
    """
    offered = task.tools if tools is None else tools  # a shortlist (tool_retrieval) or every tool
    episodes = episodes_block([s for s in shots if s.steps])
    extra = "\n\n".join(b for b in (extra, episodes) if b)
    prompt = [Message(role="system", content=system_prompt(instruction, offered, extra, rules))]
    for shot in shots:
        if not shot.steps:
            prompt += task_messages(shot.input)
            prompt.append(Message(role="assistant", content=answer_text(shot)))
    return prompt + task_messages(task.input)


# --- episode exemplars: compact transcripts within a token budget ------------------------------------

EPISODES_HEADER = ("Solved examples of similar requests: the request, each call made and what it returned "
                   "(shortened), and the answer.")
# Observation lengths a transcript tries, longest first, until it fits what is left of the budget.
OBSERVATION_CHARS = (200, 80, 30)


def episode_transcript(shot: Exemplar, observation_chars: int = OBSERVATION_CHARS[0]) -> str:
    """An episode exemplar as a compact transcript: user request, each call and its observation, the answer."""
    request = "\n".join(m.content for m in shot.input if m.role == "user") or "\n".join(m.content for m in shot.input)
    return transcript(shot.steps, None, observation_chars, first_user=request)


def fit_shots(shots: list[Exemplar], budget_tokens: int) -> list[Exemplar]:
    """The shots the prompt shows, best first as given: every single-call shot, and each episode exemplar
    whose transcript fits what is left of `budget_tokens`, with the longest observations (OBSERVATION_CHARS)
    that fit; one that does not fit even shortened most is left out. The one place the budget is applied."""
    kept, used, n = [], approx_tokens(EPISODES_HEADER), 0
    for shot in shots:
        if not shot.steps:
            kept.append(shot)
            continue
        for chars in OBSERVATION_CHARS:
            short = shortened(shot, chars)
            cost = approx_tokens(_example(n + 1, short)) + 1  # and the blank line before it
            if used + cost <= budget_tokens:
                kept.append(short)
                used, n = used + cost, n + 1
                break
    return kept


def _example(n: int, shot: Exemplar) -> str:
    return f"Example {n}:\n{episode_transcript(shot)}"


def shortened(shot: Exemplar, chars: int) -> Exemplar:
    """The exemplar with each observation and answer cut to `chars` (as its transcript shows them)."""
    steps = [s.model_copy(update={
        "answer": shorten(s.answer, chars),
        "results": [r.model_copy(update={"content": shorten(r.content, chars)}) for r in s.results]})
        for s in shot.steps]
    return shot.model_copy(update={"steps": steps})


def episodes_block(shots: list[Exemplar]) -> str:
    """The episode exemplars as transcripts for the system message ("" when there are none)."""
    if not shots:
        return ""
    return "\n\n".join([EPISODES_HEADER, *(_example(n, s) for n, s in enumerate(shots, 1))])


# --- prompt layouts: how a model sees the messages above (agentlearn.models names one per model) ---------

# A base model has seen no chat turns, only text: the system message as a preamble, then each exemplar as a
# "Request: ... / Call: <tool_call>...</tool_call>" block, then the task's request and "Call:", which the
# model continues. A tool's output (multi-turn) is a "Result:" line. Rendered as a chat template so that
# generation, training rows and validation prompts come out alike.
COMPLETION_TEMPLATE = (
    "{{- bos_token if bos_token else '' -}}"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{{ m['content'] | trim }}{{ '\\n\\n' }}"
    "{%- elif m['role'] == 'assistant' -%}{{ 'Call: ' }}{{ m['content'] | trim }}{{ '\\n\\n' }}"
    "{%- elif m['role'] == 'tool' -%}{{ 'Result: ' }}{{ m['content'] | trim }}{{ '\\n' }}"
    "{%- else -%}{{ 'Request: ' }}{{ m['content'] | trim }}{{ '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Call: ' }}{%- endif -%}"
)
# An instruction-tuned ChatML model ("chat"): its own turns, with an assistant's tool calls written as the agent
# writes them and tool results as `tool` turns (SmolLM2's own template drops tool calls, so a served model would
# not see the calls it made at earlier steps). The same text as SmolLM2's template for plain messages.
CHAT_TEMPLATE_FILE = Path(__file__).resolve().parent / "data" / "tool_chat_template.jinja"
PROMPT_FORMATS = {"chat": CHAT_TEMPLATE_FILE, "completion": COMPLETION_TEMPLATE}

# How an OpenAI-compatible server that reads a tokenizer's `response_template` (transformers serve) turns the
# model's text back into native tool calls: each `<tool_call>{json}</tool_call>` a call, the rest the content.
# Written beside the chat template; a base model's completion layout has no turns to parse.
CHATML_TOOL_CALLS = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open_pattern": r"\s*<tool_call>", "close": "</tool_call>", "repeats": True,
                       "content": "json", "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}
RESPONSE_TEMPLATES = {"chat": CHATML_TOOL_CALLS, "completion": None}


def chat_template(prompt_format: str) -> str:
    """The chat template a prompt format installs in a model's tokenizer."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"unknown prompt format {prompt_format!r}; choose one of {', '.join(PROMPT_FORMATS)}")
    template = PROMPT_FORMATS[prompt_format]
    return template.read_text(encoding="utf-8") if isinstance(template, Path) else template


def response_template(prompt_format: str) -> dict[str, Any] | None:
    """How a server parses the model's answer into content and native tool calls (None: it does not)."""
    chat_template(prompt_format)  # the same check of the name
    return RESPONSE_TEMPLATES[prompt_format]


# How retrieved shots are ordered in the prompt: "nearest_last" (best match right before the task) or
# "nearest_first". Measured on the two public suites with bench.bench_learning --shot-order.
SHOT_ORDER = "nearest_last"


SHOT_ORDERS = ("nearest_last", "nearest_first")


def order_shots(shots: list[Exemplar], order: str | None = None) -> list[Exemplar]:
    """Shots, best first as retrieved, put in prompt order (SHOT_ORDER unless `order` is given)."""
    order = order or SHOT_ORDER
    if order not in SHOT_ORDERS:
        raise ValueError(f"unknown shot order {order!r}; choose one of {', '.join(SHOT_ORDERS)}")
    return list(reversed(shots)) if order == "nearest_last" else list(shots)


# --- Reflexion (Shinn et al., 2023): the reflection query and the block the next trial sees ------------

REFLEXION_HEADER = (
    "You have attempted to solve the task before but failed. The following reflection(s) give a plan to "
    "avoid failing the task in the same way you did previously. Use them to improve your strategy of "
    "solving the task successfully.\n"
)

REFLEXION_FRAMING = (
    "You will be given the history of a past experience in which you were given a conversation and a set "
    "of tools, and had to answer with one tool call. You were unsuccessful in completing the task. Do not "
    "summarize the conversation, but rather think about the strategy and the tool call you made. Devise a "
    "concise, new plan of action that accounts for your mistake with reference to the specific tool and "
    "arguments you should have used. For example, if you called tool A but the user asked for B, then plan "
    "to call B with the arguments the user gave. You will need this later when you are solving the same "
    "task. Give your plan after \"Plan\"."
)

REFLEXION_EPISODE_FRAMING = (
    "You will be given the history of a past episode in which you were given a request and a set of tools, "
    "called tools one step at a time, read what each call returned, and answered. You were unsuccessful in "
    "completing the task. Do not summarize the episode, but rather find the step that went wrong from the "
    "observations (a tool's error says what it could not do) and the reason the grader gave. Devise a "
    "concise, new plan of action that accounts for your mistake with reference to the specific tool and "
    "arguments you should have used at that step, and what to do after it. You will need this later when "
    "you are solving the same task. Give your plan after \"Plan\"."
)

# --- prompts (ExpeL's templates, adapted from ReAct environments to one tool call) ------------------

EXPEL_AI_NAME = ("an advanced reasoning agent that can add, edit or remove rules from your existing rule set, "
           "based on forming new critiques of past task trajectories")
EXPEL_COMPARE_INSTRUCTION = (
    "You will be given two previous task trials in which you were given a conversation and a set of tools "
    "and had to answer with one tool call: one successful and one unsuccessful trial. You failed the trial "
    "either because you called the wrong tool, or because you gave wrong or missing arguments.")
EXPEL_SUCCESS_INSTRUCTION = (
    "You will be given successful tasks trials in which you were given a conversation and a set of tools "
    "and had to answer with one tool call.")

EXPEL_FORMAT_RULES_OPERATION_TEMPLATE = """<OPERATION> <RULE NUMBER>: <RULE>

The available operations are: AGREE (if the existing rule is strongly relevant for the task), REMOVE (if one existing rule is contradictory or similar/duplicated to other existing rules), EDIT (if any existing rule is not general enough or can be enhanced, rewrite and improve it), ADD (add new rules that are very different from existing rules and relevant for other tasks). Each needs to CLOSELY follow their corresponding formatting below (any existing rule not edited, not agreed, nor removed is considered copied):

AGREE <EXISTING RULE NUMBER>: <EXISTING RULE>
REMOVE <EXISTING RULE NUMBER>: <EXISTING RULE>
EDIT <EXISTING RULE NUMBER>: <NEW MODIFIED RULE>
ADD <NEW RULE NUMBER>: <NEW RULE>

Do not mention the trials in the rules because all the rules should be GENERALLY APPLICABLE. Each rule should be concise and easy to follow. Any operation can be used MULTIPLE times. Do at most 4 operations and each existing rule can only get a maximum of 1 operation. """  # noqa: E501

EXPEL_SUFFIX_FULL = ("Focus on REMOVE rules first, and stop ADD rule unless the new rule is VERY insightful and "
               "different from EXISTING RULES. Below are the operations you do to the above list of EXISTING "
               "RULES:\n")
EXPEL_SUFFIX_NOT_FULL = "Below are the operations you do to the above list of EXISTING RULES:\n"

EXPEL_COMPARE_TEMPLATE = """{instruction}
Here are the two previous trials to compare and critique:
TRIAL TASK:
{task}

SUCCESSFUL TRIAL:
{success_history}

FAILED TRIAL:
{fail_history}

Here are the EXISTING RULES:
{existing_rules}

By examining and contrasting to the successful trial, and the list of existing rules, you can perform the following operations: add, edit, remove, or agree so that the new list of rules is GENERAL and HIGH LEVEL critiques of the failed trial or proposed way of Thought so they can be used to avoid similar failures when encountered with different questions in the future. Have an emphasis on critiquing how to perform better Thought and Action. Follow the below format:

""" + EXPEL_FORMAT_RULES_OPERATION_TEMPLATE  # noqa: E501

EXPEL_SUCCESS_TEMPLATE = """{instruction}
Here are the trials:
{success_history}

Here are the EXISTING RULES:
{existing_rules}

By examining the successful trials, and the list of existing rules, you can perform the following operations: add, edit, remove, or agree so that the new list of rules are general and high level insights of the successful trials or proposed way of Thought so they can be used as helpful tips to different tasks in the future. Have an emphasis on tips that help the agent perform better Thought and Action. Follow the below format:

""" + EXPEL_FORMAT_RULES_OPERATION_TEMPLATE  # noqa: E501


# --- the ACE-style curator (memory.curator): it answers by calling playbook_update ---------------------

CURATOR_SYSTEM = (
    "You curate a playbook: short, general rules that help an agent answer requests with one tool call. "
    "Read the failed runs, find what went wrong, and change the playbook by small deltas: ADD a new rule, "
    "EDIT bullet N to improve it, AGREE with bullet N if it would have prevented the failure, REMOVE bullet "
    "N if it misleads, MERGE bullet N with bullet M when they say the same thing. A rule names the tool or "
    "argument it is about and is one sentence. Answer by calling playbook_update.")


# --- memory for an agent that is not ours (traces.memory): added to its own system message ------------

EXEMPLARS_HEADER = ("Solved requests like this one, each with the tool call that answered it correctly "
                    "(most similar last):")


def answer_text(shot: Exemplar) -> str:
    """An exemplar's answer as the agent writes it: each of its calls in <tool_call> form, one a line."""
    return format_tool_calls(shot.answer_calls())


def exemplar_block(shots: list[Exemplar]) -> str:
    """Exemplars as text for another agent's system message ("" when there are none)."""
    if not shots:
        return ""
    cases = [f"Request: {task_messages(s.input)[0].content}\nCall: {answer_text(s)}" for s in shots]
    return "\n\n".join([EXEMPLARS_HEADER, *cases])

