"""Install ratescript and the peers into this venv; a peer that fails is recorded, not fatal.

Run by ``make bench-peers`` with the venv's python. ratescript and the shared stack
(clients, FastAPI, uvicorn, matplotlib) must install; each peer is then installed on
its own, and a failure is written to ``.venv/install-errors.json`` so the report says
why that library is missing instead of dropping it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parent
ROOT = PEERS_DIR.parent.parent
ERRORS = Path(sys.prefix) / "install-errors.json"
# Requirement lines naming these are peers (or what only a peer needs).
PEERS = {
    "traffik": "traffik",
    "pottery": "traffik",
    "slowapi": "slowapi",
    "limits": "slowapi",
    "pymemcache": "slowapi",
    "memcachio": "limits.aio",
    "fastapi-limiter": "fastapi-limiter",
    "pyrate-limiter": "fastapi-limiter",
}


def _pip(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    return subprocess.run([*command, *arguments], capture_output=True, text=True)


def main() -> None:
    lines = [
        line.split("#")[0].strip()
        for line in (PEERS_DIR / "requirements.txt").read_text().splitlines()
    ]
    requirements = [line for line in lines if line]
    name = re.compile(r"[A-Za-z0-9_.-]+")

    def distribution(requirement: str) -> str:
        match = name.match(requirement)
        return match.group(0).lower() if match else requirement

    shared = [r for r in requirements if distribution(r) not in PEERS]
    peers = [r for r in requirements if distribution(r) in PEERS]
    done = _pip("-e", f"{ROOT}[redis,memcached,fastapi]", *shared)
    if done.returncode != 0:
        sys.exit(f"installing ratescript and the shared stack failed:\n{done.stderr}")
    errors: dict[str, str] = {}
    for requirement in peers:
        result = _pip(requirement)
        if result.returncode != 0:
            last = [line for line in result.stderr.splitlines() if line.strip()][-3:]
            library = PEERS[distribution(requirement)]
            errors[library] = f"pip install {requirement}: " + " / ".join(last)
            print(f"could not install {requirement}: {' '.join(last)}", file=sys.stderr)
    ERRORS.write_text(json.dumps(errors, indent=1) + "\n")


if __name__ == "__main__":
    main()
