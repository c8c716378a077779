"""The in-process target: a single-key script fused with ``InMemoryStore``'s dict.

The Python target is a pure function, which is what lets one function serve both
the in-process store and the Memcached plan; but for the in-process store, calling
it means packing a result tuple with the writes, unpacking it again, and building
the ``Decision`` from a slice of it: half of a decision's cost when the arithmetic
is a dozen operations. Like jinja specialising a template into one Python
function, this target writes the script's body once more, inside the store's own
read and write: namespaced key, clock, the key's lock, a lookup with lazy expiry,
then the body, whose every ``return`` commits the writes and builds the
``Decision`` directly.

The body is the Python target's, statement for statement (this generator
subclasses it and changes only how a script starts and returns), so both give the
same numbers by construction, and the conformance kit checks it.

The source defines ``_rs_bind(_store, _codec, _decoded, _fail)``, which returns the
runner for one store: ``runner(key, args) -> Decision``. Writes stay in ``_w0``
and ``_t0`` until a ``return``, as in the pure function: a script that fails
halfway writes nothing.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ratescript.clock import wall_clock_ms
from ratescript.decision import Decision
from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.passes import checked_on_entry, may_fail, statements
from ratescript.scriptdsl.runtime import MAX_TTL_MS, namespace, ttl
from ratescript.scriptdsl.targets.python import PythonGenerator, _plain

__all__ = [
    "GENERATORS",
    "MemoryCheckGenerator",
    "MemoryGenerator",
    "MemoryWaitGenerator",
    "generate_memory",
    "memory_namespace",
]

#: Every this many lookups of a missing key (a power of two), a runner lets the store
#: check a few keys for expiry.
SWEEP_EVERY = 32


# What is known, at a point of the script, of the writes made before it.
NONE, MAYBE, SURE = "none", "maybe", "sure"


def _join(states: set[str]) -> str:
    """The state after paths that arrive with ``states``."""
    return states.pop() if len(states) == 1 else MAYBE


def _returns(body: tuple[n.Stmt, ...]) -> bool:
    """Whether every path through ``body`` ends in a ``return``."""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, n.Return):
        return True
    if isinstance(last, n.If):
        return _returns(last.body) and _returns(last.orelse)
    return False


class MemoryGenerator(PythonGenerator):
    """Generates the fused runner of a script that takes exactly one key."""

    variant = ""  # how the runner's result differs, for the header of its source

    def __init__(self, ir: n.ScriptIR) -> None:
        if len(ir.keys) != 1:
            raise ValueError("the in-process target fuses single-key scripts only")
        super().__init__(ir)
        writes = [s for s in statements(ir.body) if isinstance(s, n.StoreKey | n.DeleteKey)]
        self.writes = bool(writes)
        self.deletes = any(isinstance(s, n.DeleteKey) for s in writes)
        self.without_ttl = any(isinstance(s, n.StoreKey) and s.ttl_ms is None for s in writes)
        # Whether the key has been written on the paths that reach the statement being
        # generated: a `return` commits nothing after NONE, and needs no test after SURE.
        self.written = NONE
        # Per `if` being generated: the state its branches start from, and each branch's
        # (state at its end, whether it returns); None for a loop's body.
        self.branches: list[tuple[str, list[tuple[str, bool]]] | None] = []
        # Whether a `return` asks if a write happened (`_w0 is not _KEEP`): else the
        # writes need no initial values.
        self.asks_written = False

    def generate(self) -> str:
        ir = self.ir
        out = self.out
        out.origin = ir.first_line
        out.line(f"# ratescript script `{ir.name}` from {ir.module}, line {ir.first_line},")
        out.line(f"# fused with InMemoryStore{self.variant}; generated code: do not edit")
        out.line("def _rs_bind(_store, _codec, _decoded, _fail):")
        out.indent()
        for name in ("_data", "_names", "_named", "_sweep"):
            out.line(f"{name} = _store.{name}")
        out.line("_missing = 0")
        out.line(f"def {ir.name}(_key, _args):")
        out.indent()
        out.line("nonlocal _missing")
        if ir.params:
            params = ", ".join(ir.params)
            out.line(f"{params}{',' if len(ir.params) == 1 else ''} = _args")
        out.line("_key, _lock = _names.get(_key) or _named(_key)")
        # The store's clock as it is now (a runner stays valid when the clock is replaced);
        # the default one inline: its body is one multiplication, its frame dearer.
        out.line("_clock = _store._clock")
        out.line("_now = _rs_time() * 1000.0 if _clock is _rs_wall_clock_ms else _clock()")
        out.line("_lock.acquire()")
        out.line("try:")
        out.indent()
        self.read_key()
        inits = out.mark()
        if self.writes:
            out.line("_w0 = _KEEP")
            out.line("_t0 = None")
        self.block(ir.body)
        if self.writes and not self.asks_written:
            out.remove(inits, 2)  # every commit follows a sure write: the two are dead
        out.dedent()
        out.line("except (ArithmeticError, ValueError) as _exc:")
        out.line("    raise _fail(_exc) from _exc")
        out.line("finally:")
        out.line("    _lock.release()")
        out.dedent()
        out.line(f"return {ir.name}")
        out.dedent()
        return out.source

    def read_key(self) -> None:
        """``_k0``: the key's value as the pure function takes it, expired keys dropped."""
        line = self.out.line
        line("_entry = _data.get(_key)")
        line("if _entry is None:")
        line("    _k0 = None")
        # A key the script may add: memory grows only with new keys, so this is where
        # the store gets to reclaim a few expired ones.
        line("    _missing += 1")
        line(f"    if not _missing & {SWEEP_EVERY - 1}:")
        line("        _sweep(_rs_ifloor(_now))")
        line("else:")
        line("    _k0, _expires, _held = _entry")
        line("    if _expires is not None and _now >= _expires:")
        line("        del _data[_key]")
        line("        _k0 = None")
        line("    elif _held is not _codec:")
        line("        _k0 = _decoded(_key, _entry, _codec)")

    # --- statements that differ from the pure function ----------------------------------

    def stmt_StoreKey(self, node: n.StoreKey) -> None:
        super().stmt_StoreKey(node)
        self.written = SURE

    def ttl(self, node: n.StoreKey) -> str:
        # Where the store keeps it: the first whole ms at which the key is gone.
        # The usual TTL inline (`expires_at` without its call), anything else through it.
        # In floats: `x // 1.0` is floor(x) and `-(x // -1.0)` ceil(x), exact for whole
        # ms below 2**53, without the ints of math.floor (a third of the store's work).
        if node.ttl_ms is None:
            return "None"
        first, again = self.once(self.expr(node.ttl_ms), _plain(node.ttl_ms))
        return (
            f"(_now // 1.0 - {again} // -1.0 + 1.0 if 1.0 <= {first} <= {MAX_TTL_MS!r} "
            f"else _rs_expires(_now, {again}))"
        )

    def stmt_DeleteKey(self, node: n.DeleteKey) -> None:
        super().stmt_DeleteKey(node)
        self.written = SURE

    def stmt_If(self, node: n.If) -> None:
        start = self.written
        ends: list[tuple[str, bool]] = []
        self.branches.append((start, ends))
        super().stmt_If(node)
        self.branches.pop()
        orelse = node.orelse
        while len(orelse) == 1 and isinstance(orelse[0], n.If):
            orelse = orelse[0].orelse
        if not orelse:
            ends.append((start, False))  # no `else`: the test may skip every branch
        going_on = {state for state, returns in ends if not returns}
        self.written = _join(going_on) if going_on else start

    def body(self, stmts: tuple[n.Stmt, ...]) -> None:
        frame = self.branches[-1] if self.branches else None
        if frame is None:
            super().body(stmts)
            return
        start, ends = frame
        self.written = start
        super().body(stmts)
        ends.append((self.written, _returns(stmts)))

    def stmt_ForLog(self, node: n.ForLog) -> None:
        # Not a branch of an `if`; and keys are never written inside a loop (the
        # frontend refuses it), so the state is the same before, in and after it.
        self.branches.append(None)
        super().stmt_ForLog(node)
        self.branches.pop()

    def stmt_Return(self, node: n.Return) -> None:
        decision = f"({self.decision_fields(node)})"
        if self.written == NONE:
            self.out.line(f"return _rs_new(_rs_Decision, {decision})")
            return
        # Every number of the decision first: one that fails leaves nothing written.
        self.out.line(f"_decision = {decision}")
        self.commit_and_return("_rs_new(_rs_Decision, _decision)")

    def commit_and_return(self, result: str) -> None:
        """Write what the paths to this ``return`` have written, then return ``result``."""
        if self.written == SURE:
            self.commit()
        elif self.written == MAYBE:
            self.asks_written = True
            self.out.line("if _w0 is not _KEEP:")
            self.out.indent()
            self.commit()
            self.out.dedent()
        self.out.line(f"return {result}")

    def commit(self) -> None:
        """Write ``_w0``, gone at ``_t0``, as ``InMemoryStore`` keeps its entries."""
        line = self.out.line
        if self.deletes:
            line("if _w0 is _DELETE:")
            line("    _data.pop(_key, None)")
            line("else:")
            line("    _data[_key] = (_w0, _t0, _codec)")
        else:
            line("_data[_key] = (_w0, _t0, _codec)")


class _FieldsLeftOut(MemoryGenerator):
    """A runner that returns less than the ``Decision``: the fields it leaves out are
    still evaluated when their evaluation can fail, before anything is written, so a
    division by zero fails the hit on every target (``passes.may_fail``; a name
    already divided by on every path to the ``return`` cannot be zero there,
    ``passes.checked_on_entry``)."""

    def __init__(self, ir: n.ScriptIR) -> None:
        super().__init__(ir)
        self.nonzero_names = checked_on_entry(ir)

    def evaluate_failing(self, node: n.Return, fields: tuple[n.Expr, ...]) -> None:
        """Evaluate those of ``fields`` that may fail, for their failure alone, in the
        order the full runner evaluates them."""
        nonzero = self.nonzero_names[id(node)]
        for field in fields:
            if may_fail(field, nonzero):
                self.out.line(self.expr(field))


class MemoryWaitGenerator(_FieldsLeftOut):
    """The fused runner of ``await strategy(key, rate, store)``: the wait alone.

    The same body and writes, but a ``return`` gives ``0.0`` when it admits and the
    wait when it rejects, the float the seed's contract asks for. The other fields of
    the decision, its metadata dict and the ``Decision`` itself are never built: on
    the fixed window that is a third of the runner's work.
    """

    variant = ", returning the wait alone"

    def stmt_Return(self, node: n.Return) -> None:
        fields = (node.wait_ms, node.remaining, node.reset_ms, *node.metadata)
        wait = "0.0"
        if not node.allowed:
            wait = self.expr(node.wait_ms)
            if may_fail(node.wait_ms, self.nonzero_names[id(node)]):
                self.out.line(f"_wait = {wait}")
                wait = "_wait"
            fields = fields[1:]
        self.evaluate_failing(node, fields)
        self.commit_and_return(wait)


class MemoryCheckGenerator(_FieldsLeftOut):
    """The fused runner of a throttle's hit: ``None`` when it admits, else the ``Decision``.

    A throttle that sends no rate-limit headers reads nothing of an admitting decision
    (a rejected one goes to its handler, whole): the admitting ``return`` builds
    nothing, the saving of the wait runner on the path a throttle takes most.
    """

    variant = ", returning None when it admits"

    def stmt_Return(self, node: n.Return) -> None:
        if not node.allowed:
            super().stmt_Return(node)
            return
        self.evaluate_failing(node, (node.wait_ms, node.remaining, node.reset_ms, *node.metadata))
        self.commit_and_return("None")


#: The in-process runners of a script by what they return: the ``Decision``, the
#: wait alone, ``None`` when admitting.
GENERATORS: dict[str, type[MemoryGenerator]] = {
    "decision": MemoryGenerator,
    "wait": MemoryWaitGenerator,
    "check": MemoryCheckGenerator,
}


def generate_memory(ir: n.ScriptIR, variant: str = "decision") -> tuple[str, tuple[int, ...]]:
    """Python source defining ``_rs_bind`` for a single-key script, and its line map.

    ``variant`` names what the runner returns (``GENERATORS``).
    """
    generator = GENERATORS[variant](ir)
    source = generator.generate()
    return source, generator.out.line_map


def memory_namespace() -> dict[str, Any]:
    """The globals of a fused runner: the Python target's, and what the store part uses."""
    scope = namespace()
    scope["__builtins__"] = {
        **scope["__builtins__"],
        "ArithmeticError": ArithmeticError,
        "ValueError": ValueError,
    }
    scope.update(
        _rs_new=tuple.__new__,
        _rs_Decision=Decision,
        _rs_expires=expires_at,
        _rs_time=time.time,
        _rs_wall_clock_ms=wall_clock_ms,
    )
    return scope


def expires_at(now: float, ttl_ms: float) -> int:
    """The first whole ms at which a key written at ``now`` with ``ttl_ms`` is gone.

    ``InMemoryStore``'s expiry, which follows Redis (see there); ``ttl_ms`` is clamped
    as every target clamps it (``runtime.ttl``).
    """
    if 1.0 <= ttl_ms <= MAX_TTL_MS:  # the usual TTL: nothing to clamp
        return math.floor(now) + math.ceil(ttl_ms) + 1
    return math.floor(now) + int(ttl(ttl_ms)) + 1
