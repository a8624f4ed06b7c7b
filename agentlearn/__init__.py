"""agentlearn: make an LLM agent learn from experience, with people in the loop."""

__version__ = "0.1.0"
