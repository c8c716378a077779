"""One emitter for every target: lines, indentation and a map back to DSL lines.

Like jinja's code generator, it keeps, for each emitted line, the author's line it
came from, so an error raised by generated Lua or Python names the DSL source.
"""

from __future__ import annotations

__all__ = ["Emitter"]


class Emitter:
    """Accumulates generated source with indentation and a line map."""

    def __init__(self, indent_unit: str = "    ") -> None:
        self._lines: list[str] = []
        self._origins: list[int] = []
        self._depth = 0
        self._unit = indent_unit
        self._counter = 0
        self.origin = 0  # the DSL line the next emitted lines come from

    def line(self, text: str = "") -> None:
        self._lines.append(f"{self._unit * self._depth}{text}" if text else "")
        self._origins.append(self.origin)

    def mark(self) -> int:
        """Where the next line goes, for ``remove``."""
        return len(self._lines)

    def remove(self, at: int, count: int) -> None:
        """Drop the ``count`` lines emitted from mark ``at``: lines that what came after
        them made dead (the generator knows only then)."""
        del self._lines[at : at + count]
        del self._origins[at : at + count]

    def indent(self) -> None:
        self._depth += 1

    def dedent(self) -> None:
        self._depth -= 1

    def temporary(self, stem: str = "t") -> str:
        """A fresh generated name; authors cannot write names starting with ``_``."""
        self._counter += 1
        return f"_{stem}{self._counter}"

    @property
    def source(self) -> str:
        return "\n".join(self._lines) + "\n"

    @property
    def line_map(self) -> tuple[int, ...]:
        """``line_map[i]`` is the DSL line of generated line ``i + 1`` (0: prologue)."""
        return tuple(self._origins)
