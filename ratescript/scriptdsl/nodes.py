"""The intermediate representation every target is generated from.

The front end lowers an author's function to these frozen dataclasses; targets
only ever see this tree. It is deliberately small: records are already split into
one variable per field and every value is a number (an IEEE-754 double) or a
boolean, so a generator needs no type information beyond the node kinds.
Every node carries ``line`` (the author's line) so generated code can be mapped
back to the DSL source in error messages.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "EXPR_NODES",
    "STMT_NODES",
    "Assign",
    "Binary",
    "BoolConst",
    "Break",
    "Builtin",
    "Compare",
    "Cond",
    "Const",
    "DeleteKey",
    "Expr",
    "ForLog",
    "If",
    "KeyKind",
    "KeySpec",
    "LoadKey",
    "LogAppend",
    "LogCount",
    "LogDropOldest",
    "LogEdge",
    "LogSum",
    "LogTrim",
    "Logical",
    "Now",
    "Return",
    "ScriptIR",
    "Stmt",
    "StoreKey",
    "Unary",
    "Var",
]


class KeyKind(Enum):
    """What a declared key holds, which fixes how its value is encoded."""

    NUMBER = "number"
    RECORD = "record"
    LOG = "log"


@dataclass(frozen=True)
class KeySpec:
    """A key the script declares as a parameter: its name, kind and record fields."""

    name: str
    kind: KeyKind
    fields: tuple[str, ...] = ()
    record_name: str = ""


# --- expressions -----------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    """A numeric literal (always finite)."""

    value: float
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class BoolConst:
    value: bool
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Var:
    """A script variable, parameter or record field (``b__tokens``)."""

    name: str
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Now:
    """The script's clock in milliseconds: the caller's, or the server's."""

    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Binary:
    """Arithmetic: ``+ - * /`` and the Lua-defined ``//`` (floor of ``/``) and ``%``."""

    op: str
    left: Expr
    right: Expr
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Unary:
    """``-`` on a number or ``not`` on a boolean."""

    op: str
    operand: Expr
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Logical:
    """``and`` / ``or`` on booleans only (Lua treats 0 as true; Python does not)."""

    op: str
    left: Expr
    right: Expr
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Cond:
    """``a if test else b`` on numbers only (Lua spells it ``test and a or b``)."""

    test: Expr
    then: Expr
    orelse: Expr
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Builtin:
    """One of ``min max abs floor ceil`` with Lua 5.1's exact semantics."""

    func: str
    args: tuple[Expr, ...]
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class LogSum:
    """Sum of the amounts of a log, added oldest first (the order fixes the rounding)."""

    log: str
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class LogCount:
    log: str
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class LogEdge:
    """Time (``part="time"``) or amount of the oldest or newest entry, or ``default``."""

    log: str
    newest: bool
    part: str
    default: Expr
    line: int = field(default=0, kw_only=True)


Expr = (
    Const
    | BoolConst
    | Var
    | Now
    | Binary
    | Unary
    | Logical
    | Compare
    | Cond
    | Builtin
    | LogSum
    | LogCount
    | LogEdge
)


# --- statements ------------------------------------------------------------------


@dataclass(frozen=True)
class Assign:
    """Assign several variables at once; every value is evaluated before any is bound."""

    names: tuple[str, ...]
    values: tuple[Expr, ...]
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class If:
    test: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...]
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class ForLog:
    """Visit the entries of a log oldest first, binding their time and amount."""

    log: str
    time_var: str
    amount_var: str
    body: tuple[Stmt, ...]
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Break:
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class Return:
    """The decision. ``metadata`` holds every metadata name of the script, in order."""

    allowed: bool
    wait_ms: Expr
    remaining: Expr
    reset_ms: Expr
    metadata: tuple[Expr, ...]
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class LoadKey:
    """Read key ``key`` into ``targets`` (one per record field, or the log's name).

    ``defaults`` is evaluated only when the key is missing; a log has none (empty).
    """

    key: int
    targets: tuple[str, ...]
    defaults: tuple[Expr, ...]
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class StoreKey:
    """Write ``values`` (record fields or one number) or the log ``log`` to a key."""

    key: int
    values: tuple[Expr, ...]
    log: str
    ttl_ms: Expr | None
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class DeleteKey:
    key: int
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class LogTrim:
    """Drop entries from the oldest end while their time is at or before ``cutoff``."""

    log: str
    cutoff: Expr
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class LogAppend:
    """Append ``(time, amount)``; a time earlier than the newest is raised to it, and an
    entry with the newest entry's time merges into it (memory bounded by distinct ms)."""

    log: str
    time: Expr
    amount: Expr
    line: int = field(default=0, kw_only=True)


@dataclass(frozen=True)
class LogDropOldest:
    """Remove the oldest entry, if any (a FIFO queue's pop)."""

    log: str
    line: int = field(default=0, kw_only=True)


Stmt = (
    Assign
    | If
    | ForLog
    | Break
    | Return
    | LoadKey
    | StoreKey
    | DeleteKey
    | LogTrim
    | LogAppend
    | LogDropOldest
)


#: The node classes of each kind, for walks and dispatch tables.
EXPR_NODES: tuple[type, ...] = typing.get_args(Expr)
STMT_NODES: tuple[type, ...] = typing.get_args(Stmt)


@dataclass(frozen=True)
class ScriptIR:
    """A whole script: its declared keys, numeric parameters and body."""

    name: str
    module: str  # where the function was defined; names the script in generated headers
    filename: str
    first_line: int
    keys: tuple[KeySpec, ...]
    params: tuple[str, ...]
    metadata_names: tuple[str, ...]
    body: tuple[Stmt, ...]
    variables: tuple[str, ...]
    logs: tuple[str, ...]
    uses_now: bool
    readonly: bool
