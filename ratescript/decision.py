"""``Decision``: what every script, strategy and store returns for one hit."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NamedTuple

__all__ = ["NO_METADATA", "Decision"]

#: The metadata of a decision that has none: one shared, read-only empty mapping.
NO_METADATA: Final[Mapping[str, float]] = MappingProxyType({})


class Decision(NamedTuple):
    """The outcome of one hit.

    ``wait_ms`` is 0 when allowed; otherwise how long until the same hit would be
    admitted on an otherwise idle key. ``remaining`` and ``reset_ms`` describe the
    limit after this hit; ``metadata`` holds the script's named extra values.

    A named tuple rather than a frozen dataclass: one is built per hit, and a frozen
    dataclass pays for ``object.__setattr__`` on every field.
    """

    allowed: bool
    wait_ms: float
    remaining: float
    reset_ms: float
    metadata: Mapping[str, float] = NO_METADATA
