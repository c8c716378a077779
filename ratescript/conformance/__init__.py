"""The conformance kit: executors and checks that prove every store agrees."""

from __future__ import annotations

__all__: list[str] = []
