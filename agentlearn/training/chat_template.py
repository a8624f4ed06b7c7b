"""A chat template that renders tool calls and tool messages, for models whose own template drops them.

SmolLM2's template writes each message's `content` only: an assistant turn holding `tool_calls` (TRL's
tool-calling format, which the SFT export writes for episodes) would train on an empty turn. The
template in agentlearn/data/tool_chat_template.jinja is SmolLM2's ChatML, identical for plain messages,
that writes each call as the agent's own `<tool_call>{"name": ..., "arguments": ...}</tool_call>`
(toolcall.format_tool_call) and a tool's answer as a `tool` turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agentlearn.prompts import CHAT_TEMPLATE_FILE

TEMPLATE = CHAT_TEMPLATE_FILE  # also what a converted SmolLM2 carries (agentlearn.models)


def has_tool_calls(rows: Iterable[dict[str, Any]]) -> bool:
    """True when a row's conversation (SFT messages, or a DPO prompt) holds an assistant's tool calls."""
    for row in rows:
        for key in ("messages", "prompt"):
            messages = row.get(key)
            if isinstance(messages, list) and any(isinstance(m, dict) and m.get("tool_calls") for m in messages):
                return True
    return False


def ensure_tool_calling(tokenizer: Any) -> bool:
    """Give the tokenizer the tool-calling template unless its own renders tool calls; True if it was given."""
    from trl.chat_template_utils import supports_tool_calling

    if supports_tool_calling(tokenizer):
        return False
    tokenizer.chat_template = TEMPLATE.read_text(encoding="utf-8")
    return True
