"""A tiny MCP server over stdio for the tool-binding tests: a counter, an echo, a failing and a slow tool."""

import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("counter")
_count = {"n": 0}


@server.tool()
def add(amount: int) -> str:
    """Add to the counter and say its new value."""
    _count["n"] += amount
    return f"counter is {_count['n']}"


@server.tool()
def echo(text: str) -> str:
    """Answer with the text."""
    return text


@server.tool()
def fail(reason: str) -> str:
    """Always raises."""
    raise ValueError(reason)


@server.tool()
def sleep(seconds: float) -> str:
    """Wait, then answer."""
    time.sleep(seconds)
    return "woke"


if __name__ == "__main__":
    server.run("stdio")
