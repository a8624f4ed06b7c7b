"""llm.RowPrefixes: which episode prompts are kept for the next step, within a byte bound (no model)."""

import torch

from agentlearn.llm import RowPrefixes


def _layers(n_tokens: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.zeros(1, 1, n_tokens, 4), torch.zeros(1, 1, n_tokens, 4))]  # 32 bytes a token


def test_a_prompt_continues_from_the_longest_kept_beginning_and_replaces_the_one_it_extends():
    kept = RowPrefixes(max_bytes=10_000)
    kept.new_call()
    kept.put([1, 2, 3, 4], _layers(4))
    kept.put([1, 2, 9], _layers(3))
    assert kept.longest([1, 2, 3, 4, 5, 6])[0] == 4
    assert kept.longest([1, 2, 9, 9])[0] == 3
    assert kept.longest([7, 8])[0] == 0 and kept.misses == 1
    kept.new_call()
    kept.put([1, 2, 3, 4, 5], _layers(5))  # the next step of the first episode
    assert sorted(kept.entries) == [(1, 2, 3, 4, 5), (1, 2, 9)] and kept.bytes == 8 * 32


def test_prompts_no_call_used_are_dropped_and_a_full_store_keeps_what_this_call_uses():
    kept = RowPrefixes(max_bytes=10 * 32)
    kept.new_call()
    kept.put([1] * 6, _layers(6))
    kept.put([2] * 6, _layers(6))  # does not fit beside the first, which this call made: not kept
    assert list(kept.entries) == [(1,) * 6]
    kept.new_call()
    kept.put([3] * 6, _layers(6))  # the first was not used by this call: it makes room
    assert list(kept.entries) == [(3,) * 6]
    kept.new_call()
    assert kept.longest([3] * 7)[0] == 6  # used by this call: it survives the next one
    kept.new_call()
    assert list(kept.entries) == [(3,) * 6]
    kept.new_call()  # a call that did not use it: gone, and its bytes with it
    assert not kept.entries and kept.bytes == 0
