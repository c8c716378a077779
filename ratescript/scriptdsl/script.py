"""``Script``: a compiled transaction script, and the ``@script`` decorator.

Compilation happens once, when the decorator runs (so a script outside the subset
fails at import, not on the first request): the function's source is lowered to
IR and every target is generated from it. The Python target (and, for a script
of one key, the in-process target) is ``compile()``d then; nothing is parsed,
generated or compiled per call.
"""

from __future__ import annotations

import hashlib
import re
import struct
import traceback
from collections.abc import Callable, Sequence
from functools import cached_property
from types import CodeType
from typing import Any, overload

from ratescript.decision import Decision
from ratescript.exceptions import (
    CorruptStateError,
    ScriptCompileError,
    ScriptError,
    ScriptRuntimeError,
)
from ratescript.scriptdsl import nodes as n
from ratescript.scriptdsl.codec import KeyCodec, codec_for
from ratescript.scriptdsl.frontend import lower_function
from ratescript.scriptdsl.passes import fold_constants, readonly_twin, written_keys
from ratescript.scriptdsl.runtime import namespace
from ratescript.scriptdsl.targets.base import too_complex
from ratescript.scriptdsl.targets.lua import generate_lua, generate_lua_batch
from ratescript.scriptdsl.targets.memcached import MemcachedPlan, plan_memcached
from ratescript.scriptdsl.targets.memory import generate_memory, memory_namespace
from ratescript.scriptdsl.targets.python import generate_python

__all__ = ["Script", "script"]

_LUA_ERROR_LINE = re.compile(r"user_script:(\d+):")
#: A script's own failure: the generated Lua raises messages starting "ratescript:".
LUA_SCRIPT_ERROR = re.compile(r"^(?:user_script:\d+: )?ratescript: ")
# A check that names its DSL line itself: "line 12: cannot store a number that is not finite".
_NAMES_ITS_LINE = re.compile(r"^line \d+: ")
_CORRUPT = re.compile(r"ratescript: corrupt value at key (.*): expected (.*?)(?: script:|$)")


def _memory_file(variant: str) -> str:
    """How the file name of an in-process runner's code names its variant."""
    return " in memory" if variant == "decision" else f" in memory, {variant}"


class Script:
    """A transaction script compiled for every target.

    ``compute`` is the Python target (a pure function, see ``targets.python``);
    ``lua_source``/``lua_sha`` the Redis script; ``memcached_plan`` the Memcached
    plan; ``readonly`` the read-only twin that ``stat()`` runs.
    """

    def __init__(self, ir: n.ScriptIR, function: Callable[..., Any] | None = None) -> None:
        ir = fold_constants(ir)  # every target sees the same constants (see the pass)
        self.ir = ir
        self.__wrapped__ = function
        self.name = ir.name
        self.keys: tuple[n.KeySpec, ...] = ir.keys
        self.params: tuple[str, ...] = ir.params
        self.metadata_names: tuple[str, ...] = ir.metadata_names
        self.key_count = len(ir.keys)
        self.param_count = len(ir.params)
        # Whether it may write a key: then its keys must be distinct (see `Store.run`).
        self.writes = bool(written_keys(ir.body))
        self.codecs: tuple[KeyCodec, ...] = tuple(codec_for(spec) for spec in ir.keys)
        self.python_source, self.python_line_map = generate_python(ir)
        code = self.compiled(self.python_source, "", self.python_line_map)
        scope = namespace()
        exec(code, scope)  # our own generated source, from a checked IR
        self.compute: Callable[..., tuple[Any, ...]] = scope[ir.name]
        self.lua_source, self.lua_line_map = generate_lua(ir)
        # The in-process target, for single-key scripts: ``_rs_bind(store, codec,
        # decoded, fail)``, which ``InMemoryStore`` calls once per script it runs.
        # Made now, so a script Python cannot compile fails at import; the other
        # in-process runners are made on first use (``memory_variant``).
        self._memory_variants: dict[str, tuple[str, tuple[int, ...], Callable[..., Any]]] = {}
        self.memory_source: str | None = None
        self.memory_line_map: tuple[int, ...] = ()
        self.memory_binder: Callable[..., Callable[[str, Sequence[float]], Decision]] | None = None
        if self.key_count == 1:
            made = self.memory_variant("decision")
            self.memory_source, self.memory_line_map, self.memory_binder = made
        self.lua_sha = hashlib.sha1(self.lua_source.encode()).hexdigest()
        self._empty_metadata = not ir.metadata_names
        # A Lua reply: allowed (1 or 0), wait_ms, remaining, reset_ms, the metadata.
        self._lua_reply = struct.Struct(f"<{4 + len(ir.metadata_names)}d")

    def compiled(self, source: str, variant: str, line_map: tuple[int, ...]) -> CodeType:
        """``compile()`` of generated Python (``<ratescript name{variant}>``, the file name
        ``python_error`` maps back), or a ``ScriptCompileError`` at the DSL line where
        Python's own limits refuse it: 100 levels of indentation, 200 of parentheses,
        20 nested loops, its parser's stack."""
        try:
            return compile(source, f"<ratescript {self.name}{variant}>", "exec")
        except (SyntaxError, MemoryError, RecursionError) as exc:
            reason, line = "Python's parser", 0
            if isinstance(exc, SyntaxError):
                reason = f"Python ({exc.msg})"
                if exc.lineno and 0 < exc.lineno <= len(line_map):
                    line = line_map[exc.lineno - 1]
            raise too_complex(self.ir, line, reason) from None

    def __repr__(self) -> str:
        keys = ", ".join(k.name for k in self.keys)
        return f"<Script {self.name}({keys}; {', '.join(self.params)})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ScriptError(
            f"script `{self.name}` is not called directly: run it on a store "
            "(`await store.run(script, keys, args)`)"
        )

    @property
    def uses_now(self) -> bool:
        return self.ir.uses_now

    @cached_property
    def readonly(self) -> Script:
        """The read-only twin: the same decisions, every write elided."""
        return self if self.ir.readonly else Script(readonly_twin(self.ir), self.__wrapped__)

    def memory_variant(self, variant: str) -> tuple[str, tuple[int, ...], Callable[..., Any]]:
        """The source, line map and ``_rs_bind`` of the in-process runner ``variant``
        (``targets.memory.GENERATORS``: "decision" the full one, made with the script;
        "wait" returns the wait alone, "check" ``None`` when admitting): generated on
        first use, as only some callers run each."""
        made = self._memory_variants.get(variant)
        if made is None:
            if self.key_count != 1:
                raise ValueError(f"script `{self.name}` takes {self.key_count} keys, not one")
            source, line_map = generate_memory(self.ir, variant)
            code = self.compiled(source, _memory_file(variant), line_map)
            scope = memory_namespace()
            exec(code, scope)  # our own generated source, from a checked IR
            made = self._memory_variants[variant] = (source, line_map, scope["_rs_bind"])
        return made

    @property
    def memory_wait_source(self) -> str:
        """The in-process runner that returns the wait alone (``await strategy(...)``)."""
        return self.memory_variant("wait")[0]

    @property
    def memory_check_source(self) -> str:
        """The in-process runner that returns ``None`` when admitting (a throttle's)."""
        return self.memory_variant("check")[0]

    @cached_property
    def lua_batch_source(self) -> str:
        """The Lua run for a group of hits on the same keys (``generate_lua_batch``)."""
        return generate_lua_batch(self.ir)

    @cached_property
    def lua_batch_sha(self) -> str:
        return hashlib.sha1(self.lua_batch_source.encode()).hexdigest()

    @cached_property
    def memcached_plan(self) -> MemcachedPlan:
        return plan_memcached(self.ir, self.codecs, self.compute, self.python_source)

    # --- turning results into decisions ----------------------------------------------

    def decision(self, result: Sequence[Any]) -> Decision:
        """The ``Decision`` of a ``compute`` result: its first five items, as they are."""
        # Per hit: ``tuple.__new__`` skips the named tuple's own ``__new__``, written in
        # Python and twice as slow.
        return tuple.__new__(Decision, result[:5])

    def decision_from_reply(self, reply: bytes) -> Decision:
        """The ``Decision`` of a Lua reply: its numbers as little-endian doubles."""
        allowed, wait_ms, remaining, reset_ms, *metadata = self._lua_reply.unpack(reply)
        if self._empty_metadata:
            return Decision(allowed == 1.0, wait_ms, remaining, reset_ms)
        return Decision(
            allowed == 1.0,
            wait_ms,
            remaining,
            reset_ms,
            dict(zip(self.metadata_names, metadata, strict=True)),
        )

    def group_outcomes(
        self, replies: Sequence[bytes], other_error: Callable[[str], Exception]
    ) -> list[Decision | Exception]:
        """Each hit's outcome from the reply of ``lua_batch_source``: its decision, its
        script's error, or ``other_error`` of any other error it met (``WRONGTYPE``...).
        """
        outcomes: list[Decision | Exception] = []
        for reply in replies:
            if reply[:1] != b"E":
                outcomes.append(self.decision_from_reply(reply))
                continue
            message = reply[1:].decode(errors="replace")
            if LUA_SCRIPT_ERROR.match(message):
                outcomes.append(self.lua_error(message))
            else:
                outcomes.append(other_error(message))
        return outcomes

    def check_args(self, args: Sequence[float]) -> None:
        if len(args) != len(self.params):
            raise ScriptError(
                f"script `{self.name}` takes {len(self.params)} arguments "
                f"({', '.join(self.params)}), got {len(args)}"
            )

    # --- errors ----------------------------------------------------------------------

    def dsl_line(self, generated_line: int, *, lua: bool) -> int:
        line_map = self.lua_line_map if lua else self.python_line_map
        return line_map[generated_line - 1] if 0 < generated_line <= len(line_map) else 0

    def python_error(self, exc: Exception) -> ScriptRuntimeError:
        """A ``ScriptRuntimeError`` naming the DSL line where generated Python failed."""
        if isinstance(exc, ScriptRuntimeError):
            return exc
        line = 0
        line_maps = {
            f"<ratescript {self.name}>": self.python_line_map,
        }
        for variant, (_source, variant_map, _bind) in self._memory_variants.items():
            line_maps[f"<ratescript {self.name}{_memory_file(variant)}>"] = variant_map
        for frame in traceback.extract_tb(exc.__traceback__):
            line_map = line_maps.get(frame.filename)
            if line_map is not None and frame.lineno and 0 < frame.lineno <= len(line_map):
                line = line_map[frame.lineno - 1]
        what = "division by zero" if isinstance(exc, ZeroDivisionError) else str(exc)
        return ScriptRuntimeError(
            f"script `{self.name}` failed at {self.ir.filename}:{line}: {what}"
        )

    def lua_error(self, message: str) -> ScriptError | CorruptStateError:
        """Translate a Redis error reply raised by this script's Lua."""
        corrupt = _CORRUPT.search(message)
        if corrupt:
            return CorruptStateError(corrupt.group(1), b"", corrupt.group(2))
        found = _LUA_ERROR_LINE.search(message)
        line = self.dsl_line(int(found.group(1)), lua=True) if found else 0
        text = message.split("ratescript: ", 1)[-1]
        text = text.split(" script: ", 1)[0]
        if _NAMES_ITS_LINE.match(text):  # as the Python target words it (runtime._nonfinite)
            return ScriptRuntimeError(text)
        return ScriptRuntimeError(
            f"script `{self.name}` failed at {self.ir.filename}:{line}: {text}"
        )


@overload
def script(function: Callable[..., Any], /) -> Script: ...


@overload
def script(*, readonly: bool = False) -> Callable[[Callable[..., Any]], Script]: ...


def script(
    function: Callable[..., Any] | None = None, /, *, readonly: bool = False
) -> Script | Callable[[Callable[..., Any]], Script]:
    """Compile a function written in the script DSL; ``readonly=True`` forbids writes."""

    def compile_function(func: Callable[..., Any]) -> Script:
        try:
            return Script(lower_function(func, readonly=readonly), func)
        except RecursionError:  # the compiler recurses as deep as the script nests
            code = func.__code__
            raise ScriptCompileError(
                f"the script nests too deeply to compile (in script `{code.co_name}`)",
                filename=code.co_filename,
                lineno=code.co_firstlineno,
            ) from None

    if function is not None:
        return compile_function(function)
    return compile_function
