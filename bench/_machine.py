"""What every benchmark's results file says about the run: the machine and the time."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata

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


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found
