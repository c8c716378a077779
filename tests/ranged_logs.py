"""Scripts compiled so that their logs take the Lua target's in-place path.

On Redis a log under 256 bytes (14 entries) is read and written whole; a longer one is
read by range (the entries needed, 8 at a time) and written in place (``SETRANGE``,
``APPEND``, dropped entries counted until a compaction). So that short runs exercise
that path fully (with compactions), tests compile the same scripts with a 64-byte
threshold too: a log of three entries or more then goes in place.
"""

from __future__ import annotations

from unittest import mock

from ratescript.scriptdsl.script import Script
from ratescript.scriptdsl.targets import lua


def by_range(script: Script) -> Script:
    """``script`` compiled again, its logs whole on Redis only below 64 bytes."""
    small = {"_rs_whole_log": ("local _rs_whole_log = 64", ())}
    with mock.patch.dict(lua._HELPERS, small):
        compiled = Script(script.ir, script.__wrapped__)
        compiled.lua_batch_source  # noqa: B018 -- generated now, under the patch
    assert "_rs_whole_log = 64" in compiled.lua_source
    return compiled
