"""The front end: an author's function → checked ``ScriptIR``.

It reads the function's ``ast``, resolves its annotations, checks every construct
against the DSL subset and lowers it to ``nodes``. Everything the targets can rely
on is established here, so they never have to reject anything:

* values are numbers or booleans, and conditions are booleans (Lua treats ``0`` as
  true, Python as false — a bare number as a condition would differ);
* every variable is assigned before use on every path;
* records are split into one variable per field; logs are bound only by ``get``;
* a log is not changed after it has been stored, nor while it is being visited;
* no statement follows a ``return`` or ``break`` in its block (Lua forbids it), and
  every path ends in a ``return``.
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ratescript.exceptions import ScriptCompileError
from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.authoring import Key, Log, Record

__all__ = ["lower_function"]

_NUM = "number"
_BOOL = "boolean"
_LOG = "log"
Type = str | type[Record]

_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}
_COMPARE = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_BUILTIN_ARITY = {
    "min": (2, 99),
    "max": (2, 99),
    "abs": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "window_index": (2, 2),
}
# `float` too: generated Python calls it (`float(len(log))`); an author's would shadow it.
_RESERVED = frozenset(
    {*_BUILTIN_ARITY, "now_ms", "allow", "deny", "math", "len", "float", "Key", "Log", "Record"}
)
_LOG_VALUES = {
    "sum": 0,
    "count": 0,
    "oldest": 1,
    "newest": 1,
    "oldest_amount": 1,
    "newest_amount": 1,
}
_VERDICT_FIELDS = ("wait_ms", "remaining", "reset_ms")
# A double holds every integer up to 2**53 exactly; beyond, literals would silently change.
_MAX_EXACT_INT = 2**53
# How deep blocks (each `elif` one more) and expressions may nest: the compiler walks
# both recursively, and generated Python may indent at most 100 levels. The Lua
# target checks Lua 5.1's own limits on what it generates (targets/lua.py).
_MAX_NESTING = 64
_MAX_EXPRESSION_DEPTH = 100


def _describe(node: ast.AST) -> str:
    """Name a construct the way an author would say it in an error message."""
    names = {
        ast.While: "`while` loops",
        ast.Try: "`try` statements",
        ast.With: "`with` statements",
        ast.AsyncWith: "`async with` statements",
        ast.Raise: "`raise` statements",
        ast.Import: "imports",
        ast.ImportFrom: "imports",
        ast.Global: "`global` statements",
        ast.Nonlocal: "`nonlocal` statements",
        ast.FunctionDef: "nested functions",
        ast.AsyncFunctionDef: "nested functions",
        ast.ClassDef: "class definitions",
        ast.Delete: "`del` statements",
        ast.Assert: "`assert` statements",
        ast.Lambda: "lambdas",
        ast.ListComp: "comprehensions",
        ast.SetComp: "comprehensions",
        ast.DictComp: "comprehensions",
        ast.GeneratorExp: "generator expressions",
        ast.List: "lists",
        ast.Dict: "dicts",
        ast.Set: "sets",
        ast.Tuple: "tuples",
        ast.Subscript: "subscripts",
        ast.Await: "`await`",
        ast.Yield: "`yield`",
        ast.YieldFrom: "`yield from`",
        ast.Starred: "starred expressions",
        ast.NamedExpr: "`:=` assignments",
        ast.AsyncFor: "`async for` loops",
        ast.Match: "`match` statements",
        ast.JoinedStr: "string operations",
        ast.Pow: "powers (`**`)",
        ast.BitAnd: "bitwise operators",
        ast.BitOr: "bitwise operators",
        ast.BitXor: "bitwise operators",
        ast.LShift: "bitwise operators",
        ast.RShift: "bitwise operators",
        ast.Invert: "bitwise operators",
        ast.MatMult: "matrix products (`@`)",
        ast.Is: "`is` comparisons",
        ast.IsNot: "`is` comparisons",
        ast.In: "`in` tests",
        ast.NotIn: "`in` tests",
    }
    for kind, text in names.items():
        if isinstance(node, kind):
            return text
    return f"`{type(node).__name__}`"


@dataclass
class _Flow:
    """What is known at a point of the body: the variables assigned on every path."""

    assigned: set[str]
    ended: bool = False  # a return or break ends this block


@dataclass
class _Lowering:
    func: Callable[..., Any]
    tree: ast.FunctionDef
    filename: str
    line_offset: int
    column_offset: int  # the indentation ``textwrap.dedent`` removed
    source_lines: list[str]
    readonly: bool
    types: dict[str, Type] = field(default_factory=dict)
    keys: list[n.KeySpec] = field(default_factory=list)
    key_index: dict[str, int] = field(default_factory=dict)
    params: list[str] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    stored_logs: set[str] = field(default_factory=set)
    visiting: list[str] = field(default_factory=list)
    uses_now: bool = False
    variables: dict[str, None] = field(default_factory=dict)
    returns: list[tuple[ast.Call, bool, dict[str, n.Expr]]] = field(default_factory=list)
    nesting: int = 0  # blocks open, the function's own included
    depth: int = 0  # expression levels open

    # --- errors ------------------------------------------------------------------

    def fail(self, node: ast.AST, message: str) -> NoReturn:
        lineno = getattr(node, "lineno", 1)
        line = lineno + self.line_offset
        source = self.source_lines[lineno - 1] if 0 < lineno <= len(self.source_lines) else ""
        raise ScriptCompileError(
            f"{message} (in script `{self.tree.name}`)",
            filename=self.filename,
            lineno=line,
            col_offset=getattr(node, "col_offset", 0) + self.column_offset,
            source_line=source,
        )

    def line(self, node: ast.AST) -> int:
        return int(getattr(node, "lineno", 1)) + self.line_offset

    # --- signature -----------------------------------------------------------------

    def resolve(self, node: ast.expr) -> Any:
        try:
            code = compile(ast.Expression(node), self.filename, "eval")
            return eval(code, self.func.__globals__)  # the author's own annotation
        except Exception as exc:
            self.fail(node, f"cannot resolve annotation `{ast.unparse(node)}`: {exc}")

    def signature(self) -> None:
        # The script's name is a global of its generated Python: it must not shadow a helper.
        self.check_new_name(self.tree, self.tree.name)
        args = self.tree.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            self.fail(
                self.tree,
                "scripts take plain parameters only (no *args, **kwargs, "
                "keyword-only or positional-only parameters)",
            )
        if args.defaults:
            self.fail(args.defaults[0], "script parameters cannot have defaults")
        for arg in args.args:
            self.check_new_name(arg, arg.arg)
            if arg.annotation is None:
                self.fail(
                    arg,
                    f"parameter `{arg.arg}` needs an annotation: a number "
                    "(`float`) or a key (`Key[float]`, `Key[MyRecord]`, `Key[Log]`)",
                )
            annotation = self.resolve(arg.annotation)
            if annotation in (float, int):
                self.params.append(arg.arg)
                self.types[arg.arg] = _NUM
                continue
            if typing.get_origin(annotation) is not Key:
                self.fail(
                    arg,
                    f"parameter `{arg.arg}` must be a number (`float`) or a "
                    f"key (`Key[...]`), not `{ast.unparse(arg.annotation)}`",
                )
            (held,) = typing.get_args(annotation)
            if held in (float, int):
                spec = n.KeySpec(arg.arg, n.KeyKind.NUMBER)
            elif held is Log:
                spec = n.KeySpec(arg.arg, n.KeyKind.LOG)
            elif isinstance(held, type) and issubclass(held, Record) and held.fields:
                self.check_record(arg, held)
                spec = n.KeySpec(arg.arg, n.KeyKind.RECORD, held.fields, held.__name__)
            else:
                self.fail(
                    arg,
                    f"key `{arg.arg}` must hold `float`, `Log` or a Record "
                    f"subclass with fields, not `{ast.unparse(arg.annotation)}`",
                )
            self.key_index[arg.arg] = len(self.keys)
            self.keys.append(spec)
        if not self.keys:
            self.fail(self.tree, "a script needs at least one key parameter (`Key[...]`)")

    def check_new_name(self, node: ast.AST, name: str) -> None:
        if not name.isascii():
            # Python takes any Unicode identifier; a Lua 5.1 name is ASCII only.
            self.fail(node, f"names in scripts must be ASCII (Lua's are): `{name}`")
        if name.startswith("_") or "__" in name:
            self.fail(
                node,
                f"names starting with `_` or containing `__` are reserved for "
                f"generated code: `{name}`",
            )
        if name in _RESERVED:
            self.fail(node, f"`{name}` is a builtin of the script language and cannot be assigned")

    def check_record(self, node: ast.AST, record: type[Record]) -> None:
        """A record's fields become names of generated code (``b__tokens``): ASCII, and
        apart from the compiler's own names (field ``_x`` of ``b`` and ``x`` of ``b_``
        would both be ``b___x``)."""
        for name in record.fields:
            if not name.isascii() or name.startswith("_") or "__" in name:
                self.fail(
                    node,
                    f"record `{record.__name__}` has a field `{name}`: field names must be "
                    "ASCII and neither start with `_` nor contain `__`",
                )

    # --- names and types -----------------------------------------------------------

    def bind(self, node: ast.AST, name: str, kind: Type) -> None:
        if name in self.key_index:
            self.fail(node, f"`{name}` is a key; keys cannot be assigned")
        if name not in self.types:
            self.check_new_name(node, name)
            if isinstance(kind, type):
                self.check_record(node, kind)
            self.types[name] = kind
        elif self.types[name] != kind:
            self.fail(
                node,
                f"`{name}` holds a {self.type_name(self.types[name])} and cannot "
                f"be assigned a {self.type_name(kind)}",
            )
        if kind not in (_LOG,) and not isinstance(kind, type):
            self.variables[name] = None

    @staticmethod
    def type_name(kind: Type) -> str:
        return kind if isinstance(kind, str) else f"`{kind.__name__}` record"

    def use(self, node: ast.AST, name: str, flow: _Flow) -> Type:
        if name in self.key_index:
            self.fail(node, f"`{name}` is a key: use `{name}.get(...)` to read it")
        if name not in self.types:
            if name in _RESERVED:
                self.fail(node, f"`{name}` must be called")
            self.fail(
                node,
                f"unknown name `{name}`: a script sees only its parameters and its own variables",
            )
        if name not in flow.assigned:
            self.fail(node, f"`{name}` may be used before it is assigned")
        return self.types[name]

    def log_name(self, node: ast.expr, flow: _Flow) -> str:
        if isinstance(node, ast.Name) and self.types.get(node.id) == _LOG:
            self.use(node, node.id, flow)
            return node.id
        self.fail(node, f"`{ast.unparse(node)}` is not a log")

    # --- statements ----------------------------------------------------------------

    def block(self, stmts: Sequence[ast.stmt], flow: _Flow) -> tuple[n.Stmt, ...]:
        if stmts and self.nesting > _MAX_NESTING:
            self.fail(
                stmts[0],
                f"blocks nest more than {_MAX_NESTING} deep (each `elif` counts as one more)",
            )
        self.nesting += 1
        out: list[n.Stmt] = []
        for stmt in stmts:
            if flow.ended:
                self.fail(
                    stmt,
                    "unreachable statement: nothing may follow `return` or "
                    "`break` in the same block",
                )
            out.extend(self.statement(stmt, flow))
        self.nesting -= 1
        return tuple(out)

    def statement(self, stmt: ast.stmt, flow: _Flow) -> list[n.Stmt]:
        line = self.line(stmt)
        if isinstance(stmt, ast.Pass):
            return []
        if isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                return []  # a docstring or comment string
            if isinstance(stmt.value, ast.Call):
                return self.effect(stmt.value, flow)
            self.fail(stmt, "an expression on its own does nothing; assign it or return")
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1:
                self.fail(stmt, "chained assignment (`a = b = ...`) is not supported")
            return self.assign(stmt.targets[0], stmt.value, flow)
        if isinstance(stmt, ast.AnnAssign):
            if stmt.value is None:
                self.fail(stmt, "a declaration without a value does nothing")
            return self.assign(stmt.target, stmt.value, flow)
        if isinstance(stmt, ast.AugAssign):
            op = _ARITH.get(type(stmt.op))
            if op is None:
                self.fail(stmt, f"{_describe(stmt.op)} are not supported in scripts")
            target = stmt.target
            if not isinstance(target, ast.Name | ast.Attribute):
                self.fail(target, f"cannot assign to {_describe(target)}")
            load = ast.copy_location(
                ast.BinOp(
                    left=ast.copy_location(_as_load(target), target), op=stmt.op, right=stmt.value
                ),
                stmt,
            )
            return self.assign(target, load, flow)
        if isinstance(stmt, ast.If):
            test = self.condition(stmt.test, flow)
            then_flow = _Flow(set(flow.assigned))
            else_flow = _Flow(set(flow.assigned))
            body = self.block(stmt.body, then_flow)
            orelse = self.block(stmt.orelse, else_flow)
            live = [f.assigned for f in (then_flow, else_flow) if not f.ended]
            flow.assigned = set.intersection(*live) if live else flow.assigned
            flow.ended = then_flow.ended and else_flow.ended
            return [n.If(test, body, orelse, line=line)]
        if isinstance(stmt, ast.For):
            return [self.for_log(stmt, flow)]
        if isinstance(stmt, ast.Break):
            if not self.visiting:
                self.fail(stmt, "`break` outside a loop")
            flow.ended = True
            return [n.Break(line=line)]
        if isinstance(stmt, ast.Return):
            flow.ended = True
            return [self.verdict(stmt, flow)]
        if isinstance(stmt, ast.Continue):
            self.fail(stmt, "`continue` is not supported in scripts (Lua 5.1 has none); use `if`")
        self.fail(stmt, f"{_describe(stmt)} are not supported in scripts")

    def assign(self, target: ast.expr, value: ast.expr, flow: _Flow) -> list[n.Stmt]:
        line = self.line(target)
        if isinstance(target, ast.Tuple):
            if not isinstance(value, ast.Tuple) or len(value.elts) != len(target.elts):
                self.fail(target, "a tuple assignment needs as many values as names")
            names: list[str] = []
            exprs: list[n.Expr] = []
            kinds: list[Type] = []
            for elt, val in zip(target.elts, value.elts, strict=True):
                if not isinstance(elt, ast.Name):
                    self.fail(elt, "tuple assignment binds plain names only")
                if elt.id in names:
                    # Python binds left to right (the last value wins), Lua 5.1 right to left.
                    self.fail(elt, f"`{elt.id}` is assigned twice in one tuple assignment")
                expr, kind = self.expr(val, flow)
                names.append(elt.id)
                exprs.append(expr)
                kinds.append(kind)
            for elt, name, kind in zip(target.elts, names, kinds, strict=True):
                self.bind(elt, name, kind)
            flow.assigned.update(names)
            return [n.Assign(tuple(names), tuple(exprs), line=line)]
        if isinstance(target, ast.Attribute):
            record = target.value
            if not (isinstance(record, ast.Name) and isinstance(self.types.get(record.id), type)):
                self.fail(
                    target,
                    f"cannot assign to `{ast.unparse(target)}`: only record fields can be assigned",
                )
            kind = self.use(record, record.id, flow)
            assert isinstance(kind, type)
            if target.attr not in kind.fields:
                self.fail(target, f"`{kind.__name__}` has no field `{target.attr}`")
            expr = self.number(value, flow)
            return [n.Assign((f"{record.id}__{target.attr}",), (expr,), line=line)]
        if not isinstance(target, ast.Name):
            self.fail(target, f"cannot assign to {_describe(target)}")
        name = target.id
        call = value if isinstance(value, ast.Call) else None
        if call is not None and self.key_method(call) == "get":
            return [self.load_key(name, call, flow)]
        record_type = self.record_type_of(value)
        if record_type is not None:
            fields = self.record_value(value, record_type, flow)
            self.bind(target, name, record_type)
            targets = tuple(f"{name}__{f}" for f in record_type.fields)
            for t in targets:
                self.variables[t] = None
            flow.assigned.update((name, *targets))
            return [n.Assign(targets, fields, line=line)]
        expr, kind = self.expr(value, flow)
        self.bind(target, name, kind)
        flow.assigned.add(name)
        return [n.Assign((name,), (expr,), line=line)]

    def key_method(self, call: ast.Call) -> str | None:
        func = call.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in self.key_index
        ):
            return func.attr
        return None

    def load_key(self, name: str, call: ast.Call, flow: _Flow) -> n.Stmt:
        assert isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)
        key_name = call.func.value.id
        index = self.key_index[key_name]
        spec = self.keys[index]
        default = _single_argument(self, call, "default", required=False)
        line = self.line(call)
        if spec.kind is n.KeyKind.LOG:
            if default is not None:
                self.fail(call, "a log key has no default: a missing log is empty")
            if name in self.types:
                self.fail(call, f"`{name}` is already bound; a log variable is bound once")
            self.bind(call, name, _LOG)
            flow.assigned.add(name)
            return n.LoadKey(index, (name,), (), line=line)
        if default is None:
            self.fail(
                call,
                f"`{key_name}.get()` needs `default=`: the value to use when the key is missing",
            )
        if spec.kind is n.KeyKind.NUMBER:
            expr = self.number(default, flow)
            self.bind(call, name, _NUM)
            flow.assigned.add(name)
            return n.LoadKey(index, (name,), (expr,), line=line)
        record = self.resolve_record(spec)
        defaults = self.record_value(default, record, flow)
        self.bind(call, name, record)
        targets = tuple(f"{name}__{f}" for f in record.fields)
        for t in targets:
            self.variables[t] = None
        flow.assigned.update((name, *targets))
        return n.LoadKey(index, targets, defaults, line=line)

    def resolve_record(self, spec: n.KeySpec) -> type[Record]:
        annotation = next(a.annotation for a in self.tree.args.args if a.arg == spec.name)
        assert annotation is not None
        record = typing.get_args(self.resolve(annotation))[0]
        assert isinstance(record, type) and issubclass(record, Record)
        return record

    def record_type_of(self, value: ast.expr) -> type[Record] | None:
        if isinstance(value, ast.Name) and isinstance(self.types.get(value.id), type):
            kind = self.types[value.id]
            assert isinstance(kind, type)
            return kind
        if isinstance(value, ast.Call):
            target = (
                self.func.__globals__.get(value.func.id)
                if isinstance(value.func, ast.Name) and value.func.id not in self.types
                else None
            )
            if isinstance(target, type) and issubclass(target, Record):
                return target
        return None

    def record_value(
        self, value: ast.expr, record: type[Record], flow: _Flow
    ) -> tuple[n.Expr, ...]:
        """The field values of a record expression: a constructor call or a record var."""
        given = self.record_type_of(value)
        if given is not record:
            self.fail(value, f"expected a `{record.__name__}` record, got `{ast.unparse(value)}`")
        if isinstance(value, ast.Name):
            self.use(value, value.id, flow)
            return tuple(n.Var(f"{value.id}__{f}", line=self.line(value)) for f in record.fields)
        assert isinstance(value, ast.Call)
        if len(value.args) > len(record.fields):
            self.fail(
                value,
                f"`{record.__name__}` has {len(record.fields)} fields, "
                f"got {len(value.args)} values",
            )
        exprs: dict[str, n.Expr] = {}
        for name, arg in zip(record.fields, value.args, strict=False):
            exprs[name] = self.number(arg, flow)
        for kw in value.keywords:
            if kw.arg is None or kw.arg not in record.fields:
                self.fail(value, f"`{record.__name__}` has no field `{kw.arg}`")
            if kw.arg in exprs:
                self.fail(value, f"field `{kw.arg}` of `{record.__name__}` given twice")
            exprs[kw.arg] = self.number(kw.value, flow)
        missing = [f for f in record.fields if f not in exprs]
        if missing:
            self.fail(
                value,
                f"`{record.__name__}` needs a value for {', '.join(f'`{m}`' for m in missing)}",
            )
        return tuple(exprs[f] for f in record.fields)

    def effect(self, call: ast.Call, flow: _Flow) -> list[n.Stmt]:
        """A call made for what it does: a key write, or a change to a log."""
        line = self.line(call)
        method = self.key_method(call)
        func = call.func
        if method is not None:
            assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            key_name = func.value.id
            index = self.key_index[key_name]
            spec = self.keys[index]
            if method == "get":
                self.fail(call, f"the value of `{key_name}.get()` must be assigned")
            if method not in ("set", "delete"):
                self.fail(call, f"keys have `get`, `set` and `delete`, not `{method}`")
            if self.readonly:
                self.fail(call, f"`{key_name}.{method}` writes, but the script is read-only")
            if self.visiting:
                self.fail(call, "keys cannot be written inside a loop; write after it")
            if method == "delete":
                if call.args or call.keywords:
                    self.fail(call, "`delete()` takes no arguments")
                return [n.DeleteKey(index, line=line)]
            value = _single_argument(self, call, "value", required=True, keywords=("ttl_ms",))
            assert value is not None
            ttl_node = next((k.value for k in call.keywords if k.arg == "ttl_ms"), None)
            ttl = None if ttl_node is None or _is_none(ttl_node) else self.number(ttl_node, flow)
            if spec.kind is n.KeyKind.LOG:
                log = self.log_name(value, flow)
                self.stored_logs.add(log)
                return [n.StoreKey(index, (), log, ttl, line=line)]
            if spec.kind is n.KeyKind.NUMBER:
                return [n.StoreKey(index, (self.number(value, flow),), "", ttl, line=line)]
            record = self.resolve_record(spec)
            return [n.StoreKey(index, self.record_value(value, record, flow), "", ttl, line=line)]
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (self.types.get(func.value.id) == _LOG)
        ):
            log = self.log_name(func.value, flow)
            if func.attr in _LOG_VALUES:
                self.fail(call, f"the value of `{log}.{func.attr}()` must be used")
            if log in self.stored_logs:
                self.fail(call, f"log `{log}` cannot change after it was stored; store it last")
            if log in self.visiting:
                self.fail(call, f"log `{log}` cannot change while it is being visited")
            if func.attr == "trim":
                cutoff = _single_argument(self, call, "cutoff", required=True)
                assert cutoff is not None
                return [n.LogTrim(log, self.number(cutoff, flow), line=line)]
            if func.attr == "append":
                if len(call.args) != 2 or call.keywords:
                    self.fail(call, "`append(time, amount)` takes two positional arguments")
                return [
                    n.LogAppend(
                        log,
                        self.number(call.args[0], flow),
                        self.number(call.args[1], flow),
                        line=line,
                    )
                ]
            if func.attr == "drop_oldest":
                if call.args or call.keywords:
                    self.fail(call, "`drop_oldest()` takes no arguments")
                return [n.LogDropOldest(log, line=line)]
            self.fail(call, f"logs have no method `{func.attr}`")
        if isinstance(func, ast.Name) and func.id in ("allow", "deny"):
            self.fail(call, f"`{func.id}(...)` must be returned: `return {func.id}(...)`")
        self.expr(call, flow)  # reports the precise problem with the call
        self.fail(call, "this call's value is not used")

    def for_log(self, stmt: ast.For, flow: _Flow) -> n.Stmt:
        if stmt.orelse:
            self.fail(stmt, "`for ... else` is not supported in scripts")
        if not (isinstance(stmt.iter, ast.Name) and self.types.get(stmt.iter.id) == _LOG):
            self.fail(stmt, "`for` loops may only visit a log: `for time, amount in log:`")
        log = self.log_name(stmt.iter, flow)
        target = stmt.target
        if not (
            isinstance(target, ast.Tuple)
            and len(target.elts) == 2
            and all(isinstance(e, ast.Name) for e in target.elts)
        ):
            self.fail(target, "a log loop binds two names: `for time, amount in log:`")
        time_var, amount_var = (e.id for e in target.elts if isinstance(e, ast.Name))
        if time_var == amount_var:
            self.fail(target, "the two loop names must differ")
        for elt in target.elts:
            assert isinstance(elt, ast.Name)
            self.bind(elt, elt.id, _NUM)
        inner = _Flow(set(flow.assigned) | {time_var, amount_var})
        self.visiting.append(log)
        try:
            body = self.block(stmt.body, inner)
        finally:
            self.visiting.pop()
        return n.ForLog(log, time_var, amount_var, body, line=self.line(stmt))

    def verdict(self, stmt: ast.Return, flow: _Flow) -> n.Return:
        call = stmt.value
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id in ("allow", "deny")
            and call.func.id not in self.types
        ):
            self.fail(stmt, "a script returns `allow(...)` or `deny(wait_ms=...)`")
        allowed = call.func.id == "allow"
        values: dict[str, n.Expr] = {}
        positional = _VERDICT_FIELDS[1:] if allowed else _VERDICT_FIELDS
        if len(call.args) > len(positional):
            self.fail(
                call,
                f"`{call.func.id}` takes at most {len(positional)} positional "
                "arguments; name metadata values",
            )
        for name, arg in zip(positional, call.args, strict=False):
            values[name] = self.number(arg, flow)
        for kw in call.keywords:
            if kw.arg is None:
                self.fail(call, "`**` arguments are not supported in scripts")
            if kw.arg in values:
                self.fail(call, f"`{kw.arg}` given twice")
            if allowed and kw.arg == "wait_ms":
                self.fail(call, "`allow` has no `wait_ms` (it is 0)")
            if kw.arg.startswith("_"):
                self.fail(call, f"metadata names cannot start with `_`: `{kw.arg}`")
            values[kw.arg] = self.number(kw.value, flow)
            if kw.arg not in _VERDICT_FIELDS and kw.arg not in self.metadata:
                self.metadata.append(kw.arg)
        if not allowed and "wait_ms" not in values:
            self.fail(call, "`deny` needs `wait_ms`: how long until the hit would be admitted")
        self.returns.append((call, allowed, values))
        return n.Return(allowed, Const0, Const0, Const0, (), line=self.line(stmt))

    # --- expressions ---------------------------------------------------------------

    def condition(self, node: ast.expr, flow: _Flow) -> n.Expr:
        expr, kind = self.expr(node, flow)
        if kind != _BOOL:
            self.fail(
                node,
                f"a condition must be a comparison or a boolean, not a {kind} "
                "(Lua and Python disagree on the truth of 0): write `x != 0`",
            )
        return expr

    def number(self, node: ast.expr, flow: _Flow) -> n.Expr:
        expr, kind = self.expr(node, flow)
        if kind != _NUM:
            self.fail(node, f"expected a number, got a {self.type_name(kind)}")
        return expr

    def expr(self, node: ast.expr, flow: _Flow) -> tuple[n.Expr, Type]:
        # As deep as the IR it makes: `a and b and c` is two `Logical`s, one in the other.
        levels = 1
        if isinstance(node, ast.BoolOp):
            levels = len(node.values)
        elif isinstance(node, ast.Compare):
            levels = len(node.ops)
        self.depth += levels
        if self.depth > _MAX_EXPRESSION_DEPTH:
            self.fail(
                node,
                f"the expression nests more than {_MAX_EXPRESSION_DEPTH} deep: "
                "give parts of it names",
            )
        expr = self.expr_node(node, flow)
        self.depth -= levels
        return expr

    def expr_node(self, node: ast.expr, flow: _Flow) -> tuple[n.Expr, Type]:
        line = self.line(node)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                return n.BoolConst(value, line=line), _BOOL
            if isinstance(value, int | float):
                number = float(value)
                if not math.isfinite(number):
                    self.fail(node, "number literals must be finite")
                if isinstance(value, int) and abs(value) > _MAX_EXACT_INT and int(number) != value:
                    self.fail(node, f"{value} is not exactly representable as a double")
                return n.Const(number, line=line), _NUM
            if isinstance(value, str | bytes):
                self.fail(node, "string operations are not supported in scripts")
            self.fail(node, f"`{value!r}` is not a number or boolean")
        if isinstance(node, ast.Name):
            kind = self.use(node, node.id, flow)
            if kind == _LOG or isinstance(kind, type):
                self.fail(node, f"`{node.id}` is a {self.type_name(kind)}, not a value")
            return n.Var(node.id, line=line), kind
        if isinstance(node, ast.BinOp):
            op = _ARITH.get(type(node.op))
            if op is None:
                self.fail(node, f"{_describe(node.op)} are not supported in scripts")
            if isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
                self.fail(node, "string operations are not supported in scripts")
            return n.Binary(
                op, self.number(node.left, flow), self.number(node.right, flow), line=line
            ), _NUM
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return n.Unary("-", self.number(node.operand, flow), line=line), _NUM
            if isinstance(node.op, ast.UAdd):
                return self.number(node.operand, flow), _NUM
            if isinstance(node.op, ast.Not):
                return n.Unary("not", self.condition(node.operand, flow), line=line), _BOOL
            self.fail(node, f"{_describe(node.op)} are not supported in scripts")
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            conditions = [self.condition(v, flow) for v in node.values]
            combined = conditions[0]
            for condition in conditions[1:]:
                combined = n.Logical(op, combined, condition, line=line)
            return combined, _BOOL
        if isinstance(node, ast.Compare):
            return self.compare(node, flow), _BOOL
        if isinstance(node, ast.IfExp):
            test = self.condition(node.test, flow)
            return n.Cond(
                test, self.number(node.body, flow), self.number(node.orelse, flow), line=line
            ), _NUM
        if isinstance(node, ast.Call):
            return self.call(node, flow), _NUM
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name):
                owner = self.types.get(node.value.id)
                if isinstance(owner, type):
                    self.use(node.value, node.value.id, flow)
                    if node.attr not in owner.fields:
                        self.fail(node, f"`{owner.__name__}` has no field `{node.attr}`")
                    return n.Var(f"{node.value.id}__{node.attr}", line=line), _NUM
            self.fail(node, f"`{ast.unparse(node)}` is not a record field")
        self.fail(node, f"{_describe(node)} are not supported in scripts")

    def compare(self, node: ast.Compare, flow: _Flow) -> n.Expr:
        operands = [node.left, *node.comparators]
        result: n.Expr | None = None
        for op_node, left, right in zip(node.ops, operands, operands[1:], strict=False):
            op = _COMPARE.get(type(op_node))
            if op is None:
                self.fail(node, f"{_describe(op_node)} are not supported in scripts")
            left_expr, left_kind = self.expr(left, flow)
            right_expr, right_kind = self.expr(right, flow)
            if left_kind != right_kind or (left_kind == _BOOL and op not in ("==", "!=")):
                self.fail(node, f"cannot compare a {left_kind} with `{op}` to a {right_kind}")
            part = n.Compare(op, left_expr, right_expr, line=self.line(node))
            result = (
                part if result is None else n.Logical("and", result, part, line=self.line(node))
            )
        assert result is not None
        return result

    def call(self, node: ast.Call, flow: _Flow) -> n.Expr:
        line = self.line(node)
        func = node.func
        name = _callee_name(func)
        if name in ("math.floor", "math.ceil"):
            name = name[5:]
        if name is not None and name not in self.types:
            if name == "now_ms":
                if node.args or node.keywords:
                    self.fail(node, "`now_ms()` takes no arguments")
                self.uses_now = True
                return n.Now(line=line)
            if name in _BUILTIN_ARITY:
                low, high = _BUILTIN_ARITY[name]
                if node.keywords or not low <= len(node.args) <= high:
                    want = f"{low}" if low == high else f"at least {low}"
                    self.fail(node, f"`{name}` takes {want} positional number arguments")
                return n.Builtin(name, tuple(self.number(a, flow) for a in node.args), line=line)
            if name in ("allow", "deny"):
                self.fail(node, f"`{name}(...)` can only be returned")
            if name == "Key":
                self.fail(
                    node,
                    "keys must be declared as parameters of the script "
                    "(`name: Key[...]`), not created inside it",
                )
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = func.value.id
            if owner in self.key_index:
                if func.attr == "get":
                    self.fail(node, f"`{owner}.get()` must be assigned to a name on its own")
                self.fail(node, f"`{owner}.{func.attr}()` has no value")
            if self.types.get(owner) == _LOG:
                return self.log_value(node, owner, func.attr, flow)
            if owner not in self.types and owner not in _RESERVED:
                self.fail(node, f"`{owner}` is not a key declared as a parameter of the script")
        if self.record_type_of(node) is not None:
            self.fail(node, "a record can only be assigned, stored or used as a default")
        shown = ast.unparse(func)
        self.fail(node, f"calls to arbitrary functions are not supported in scripts: `{shown}`")

    def log_value(self, node: ast.Call, log: str, method: str, flow: _Flow) -> n.Expr:
        line = self.line(node)
        self.use(node, log, flow)
        if method not in _LOG_VALUES:
            if method in ("trim", "append", "drop_oldest"):
                self.fail(node, f"`{log}.{method}()` has no value")
            self.fail(node, f"logs have no method `{method}`")
        if _LOG_VALUES[method] == 0:
            if node.args or node.keywords:
                self.fail(node, f"`{method}()` takes no arguments")
            return (n.LogSum if method == "sum" else n.LogCount)(log, line=line)
        default = _single_argument(self, node, "default", required=False)
        if default is None:
            self.fail(node, f"`{log}.{method}()` needs `default=`: its value for an empty log")
        return n.LogEdge(
            log,
            newest=method.startswith("newest"),
            part="amount" if method.endswith("amount") else "time",
            default=self.number(default, flow),
            line=line,
        )

    # --- the whole function ------------------------------------------------------------

    def lower(self) -> n.ScriptIR:
        self.signature()
        flow = _Flow(set(self.params))
        body = self.block(self.tree.body, flow)
        if not flow.ended:
            last = self.tree.body[-1] if self.tree.body else self.tree
            self.fail(
                last,
                "missing return: the script can reach its end without returning "
                "`allow(...)` or `deny(...)`",
            )
        body = tuple(self.finish_returns(list(body)))
        return n.ScriptIR(
            name=self.tree.name,
            module=getattr(self.func, "__module__", "") or "",
            filename=self.filename,
            first_line=self.line(self.tree),
            keys=tuple(self.keys),
            params=tuple(self.params),
            metadata_names=tuple(self.metadata),
            body=body,
            variables=tuple(v for v in self.variables if v not in self.params),
            logs=tuple(name for name, kind in self.types.items() if kind == _LOG),
            uses_now=self.uses_now,
            readonly=self.readonly,
        )

    def finish_returns(self, stmts: Iterable[n.Stmt]) -> Iterable[n.Stmt]:
        """Fill each ``Return`` with its values, now that every metadata name is known."""
        for stmt in stmts:
            if isinstance(stmt, n.Return):
                _call, allowed, values = self.returns.pop(0)
                zero = n.Const(0.0, line=stmt.line)
                yield n.Return(
                    allowed,
                    values.get("wait_ms", zero),
                    values.get("remaining", zero),
                    values.get("reset_ms", zero),
                    tuple(values.get(m, zero) for m in self.metadata),
                    line=stmt.line,
                )
            elif isinstance(stmt, n.If):
                yield n.If(
                    stmt.test,
                    tuple(self.finish_returns(stmt.body)),
                    tuple(self.finish_returns(stmt.orelse)),
                    line=stmt.line,
                )
            elif isinstance(stmt, n.ForLog):
                yield n.ForLog(
                    stmt.log,
                    stmt.time_var,
                    stmt.amount_var,
                    tuple(self.finish_returns(stmt.body)),
                    line=stmt.line,
                )
            else:
                yield stmt


Const0 = n.Const(0.0)


def _as_load(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Name):
        return ast.Name(id=node.id, ctx=ast.Load())
    assert isinstance(node, ast.Attribute)
    return ast.Attribute(value=node.value, attr=node.attr, ctx=ast.Load())


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _callee_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return None


def _single_argument(
    lowering: _Lowering,
    call: ast.Call,
    name: str,
    *,
    required: bool,
    keywords: tuple[str, ...] = (),
) -> ast.expr | None:
    """The one argument ``name`` of a call, given by position or keyword."""
    found = list(call.args)
    for kw in call.keywords:
        if kw.arg == name:
            found.append(kw.value)
        elif kw.arg not in keywords:
            lowering.fail(call, f"unexpected argument `{kw.arg}`")
    if len(found) > 1:
        lowering.fail(call, f"expected one `{name}` argument, got {len(found)}")
    if not found and required:
        lowering.fail(call, f"missing argument `{name}`")
    return found[0] if found else None


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def lower_function(func: Callable[..., Any], *, readonly: bool = False) -> n.ScriptIR:
    """Check ``func`` against the DSL subset and lower it to IR."""
    filename = inspect.getsourcefile(func) or "<script>"
    try:
        lines, first = inspect.getsourcelines(func)
    except (OSError, TypeError) as exc:
        raise ScriptCompileError(
            f"cannot read the source of `{getattr(func, '__name__', func)}`: scripts must be "
            f"defined in a file ({exc})",
            filename=filename,
        ) from None
    source = textwrap.dedent("".join(lines))
    source_lines = source.splitlines()
    module = ast.parse(source, filename)
    tree = module.body[0]
    if not isinstance(tree, ast.FunctionDef):
        raise ScriptCompileError(
            "a script must be a plain `def` function", filename=filename, lineno=first
        )
    lowering = _Lowering(
        func=func,
        tree=tree,
        filename=filename,
        line_offset=first - 1,
        column_offset=_indent(lines[0]) - _indent(source_lines[0]),
        source_lines=source_lines,
        readonly=readonly,
    )
    return lowering.lower()
