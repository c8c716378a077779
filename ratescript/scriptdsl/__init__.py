"""The script DSL: write a strategy once, run it on every store.

A transaction script is a decorated Python function in a small, checked subset
of Python. The compiler lowers it to an IR and generates, from that one tree,
Python (for the in-process store and Memcached plans) and Lua 5.1 (for Redis).
See ``docs/dsl.md`` for the language.
"""

from ratescript.decision import Decision
from ratescript.scriptdsl.authoring import (
    Key,
    Log,
    Record,
    Verdict,
    allow,
    ceil,
    deny,
    floor,
    now_ms,
    window_index,
)
from ratescript.scriptdsl.script import Script, script

__all__ = [
    "Decision",
    "Key",
    "Log",
    "Record",
    "Script",
    "Verdict",
    "allow",
    "ceil",
    "deny",
    "floor",
    "now_ms",
    "script",
    "window_index",
]
