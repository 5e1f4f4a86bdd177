"""What every benchmark's results file says about the run: the machine and the time."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "callcenter",
    "openai",
    "openai-agents",
    "flask",
    "gunicorn",
    "sqlalchemy",
    "websockets",
)


def run_facts() -> dict[str, object]:
    """The machine (CPUs, Python, platform, load, package versions) and the UTC time."""
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "packages": _versions(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_report(report: dict[str, Any], out: Path, scratch: Path) -> int:
    """Write ``report`` with its ``errors``, the logs' place and the run facts to ``out``,
    and print it. ``scratch`` (the children's logs) is kept only when a system failed;
    the exit code is 1 then, else 0."""
    errors = report["errors"]
    whole = {**report, "logs": str(scratch) if errors else None, **run_facts()}
    if not errors:
        shutil.rmtree(scratch, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(whole, indent=2)
    out.write_text(text + "\n")
    print(text)
    return 1 if errors else 0


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found
