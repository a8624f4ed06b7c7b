"""Tools for the binding tests and the episode benchmark: a two-step lookup, a failure and a slow call."""

import time

USERS = {"ada": "u-17", "linus": "u-42"}


def find_user(name: str) -> dict:
    """The user's id, which reset_password needs."""
    if name.lower() not in USERS:
        raise KeyError(f"no user named {name!r}")
    return {"user_id": USERS[name.lower()]}


def reset_password(user_id: str) -> str:
    """Reset a password by user id (not by name)."""
    if user_id not in USERS.values():
        raise ValueError(f"unknown user id {user_id!r}; look the user up first")
    return f"password of {user_id} reset"


def slow(seconds: float) -> str:
    """Sleep, then answer."""
    time.sleep(seconds)
    return "done"


class Counter:
    """A stateful environment: one instance per episode, made from the task's initial state."""

    def __init__(self, start: int = 0) -> None:
        self.value = start

    def add(self, amount: int) -> int:
        self.value += amount
        return self.value


TOOLS = [
    {"name": "find_user", "description": "Look up a user's id by name.",
     "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
    {"name": "reset_password", "description": "Reset a user's password by id.",
     "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}, "required": ["user_id"]}},
]
