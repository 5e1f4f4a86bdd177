"""Guard for the prometheus_client internal callcenter relies on: picking the value class late."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import prometheus_client  # imported before the directory is known, as in gunicorn's master
    from callcenter.observability import metrics
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    metrics.install()
    metrics.webhook_unverified("forged")
    body, _ = metrics.exposition()
    sys.stdout.write(body.decode())
    """
)


def test_metrics_of_a_worker_reach_the_multiprocess_directory(tmp_path: Path) -> None:
    """A worker that imported prometheus_client before the variable was set still writes files."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert list(tmp_path.glob("*.db")), "prometheus_client changed how it picks its value class"
    assert 'reason="forged"' in result.stdout
