"""agentlearn: make an LLM agent learn from experience, with people in the loop."""

__version__ = "0.1.0"


def memory_for(suite: str, messages: list, **options):
    """What the suite has learned for these messages (playbook and exemplars) as data: see traces.memory.

    For an agent that builds its prompts itself; the proxy adds the same to the system message.
    """
    from agentlearn.traces.memory import memory_for as recall

    return recall(suite, messages, **options)
