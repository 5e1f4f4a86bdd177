"""What every benchmark's results file says about the run: the machine and the time."""

from __future__ import annotations

import os
import platform
import time


def run_facts() -> dict[str, object]:
    """The machine (CPUs, Python, platform) and the UTC time of the run."""
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
