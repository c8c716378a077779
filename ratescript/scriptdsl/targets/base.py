"""The shared generator base: dispatch tables and the walk over statements.

Each target subclasses ``Generator`` and writes one method per node kind,
``expr_<Node>`` and ``stmt_<Node>``; the dispatch table is built once per class
(like sqlglot's generators), and a test proves every target handles every node.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from ratescript.exceptions import ScriptCompileError
from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.emit import Emitter
from ratescript.scriptdsl.nodes import EXPR_NODES, STMT_NODES

__all__ = ["EXPR_NODES", "STMT_NODES", "Generator", "too_complex"]


def too_complex(ir: n.ScriptIR, line: int, reason: str) -> ScriptCompileError:
    """A target's own limit, met at DSL ``line`` (0: the script's), as a compile error.

    The front end checks what every target needs; a target that cannot take a script
    for a limit of its own (Lua 5.1's locals, Python's parser) says so at decoration
    time, with the author's line, rather than when a store first runs the script.
    """
    line = line or ir.first_line
    return ScriptCompileError(
        f"the script is too large for {reason}: give parts of it names, or split it "
        f"(in script `{ir.name}`)",
        filename=ir.filename,
        lineno=line,
        source_line=linecache.getline(ir.filename, line),
    )


class Generator:
    """Walks a ``ScriptIR`` and emits a target's source through an ``Emitter``."""

    indent_unit: ClassVar[str] = "    "
    _expr_table: ClassVar[dict[type, Callable[[Any, Any], str]]]
    _stmt_table: ClassVar[dict[type, Callable[[Any, Any], None]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._expr_table = {
            node: getattr(cls, f"expr_{node.__name__}")
            for node in EXPR_NODES
            if hasattr(cls, f"expr_{node.__name__}")
        }
        cls._stmt_table = {
            node: getattr(cls, f"stmt_{node.__name__}")
            for node in STMT_NODES
            if hasattr(cls, f"stmt_{node.__name__}")
        }

    def __init__(self, ir: n.ScriptIR) -> None:
        self.ir = ir
        self.out = Emitter(self.indent_unit)

    @classmethod
    def unsupported_nodes(cls) -> list[str]:
        """Node kinds this target has no method for (a test demands none)."""
        missing = [t.__name__ for t in EXPR_NODES if t not in cls._expr_table]
        missing += [t.__name__ for t in STMT_NODES if t not in cls._stmt_table]
        return missing

    def expr(self, node: n.Expr) -> str:
        return self._expr_table[type(node)](self, node)

    def stmt(self, node: n.Stmt) -> None:
        self.out.origin = node.line
        self._stmt_table[type(node)](self, node)

    def block(self, body: Sequence[n.Stmt]) -> None:
        for node in body:
            self.stmt(node)
