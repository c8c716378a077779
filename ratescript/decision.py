"""``Decision``: what every script, strategy and store returns for one hit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Decision"]

_NO_METADATA: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit.

    ``wait_ms`` is 0 when allowed; otherwise how long until the same hit would be
    admitted on an otherwise idle key. ``remaining`` and ``reset_ms`` describe the
    limit after this hit; ``metadata`` holds the script's named extra values.
    """

    allowed: bool
    wait_ms: float
    remaining: float
    reset_ms: float
    metadata: Mapping[str, float] = field(default_factory=lambda: _NO_METADATA)
