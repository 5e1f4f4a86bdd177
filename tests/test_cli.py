"""The `callcenter` command line as a user runs it: the installed console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.config.loader import example_config_path

CONSOLE_SCRIPT = Path(sys.executable).with_name("callcenter")

TOOLS_MODULE = '''
import callcenter


@callcenter.tool
def check_stock(sku: str) -> dict[str, int]:
    """How many units of a product are in stock.

    Args:
        sku: The product's stock-keeping unit.
    """
    return {"units": 3}
'''


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"the console script is not installed at {CONSOLE_SCRIPT}")
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def with_tools(config: str) -> str:
    """The example config with one more tool module and the support route using its tool."""
    more_modules = config.replace(
        'tool_modules = ["callcenter.tools.examples"]',
        'tool_modules = ["callcenter.tools.examples", "shop_tools"]',
    )
    return more_modules.replace(
        'tools = ["lookup_order", "transfer_to_human", "end_call"]',
        'tools = ["lookup_order", "check_stock", "transfer_to_human", "end_call"]',
        1,
    )


def test_check_config_accepts_the_example(tmp_path: Path) -> None:
    """check-config validates the example config and prints a summary."""
    result = run("check-config", str(example_config_path()), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ": OK (" in result.stdout


def test_check_config_imports_tool_modules_from_the_working_directory(tmp_path: Path) -> None:
    """A tool module next to the config, in the working directory, is found and checked."""
    config = with_tools(example_config_path().read_text())
    assert "shop_tools" in config
    assert "check_stock" in config
    (tmp_path / "callcenter.toml").write_text(config)
    (tmp_path / "shop_tools.py").write_text(TOOLS_MODULE)
    result = run("check-config", "callcenter.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_check_config_names_an_unknown_tool(tmp_path: Path) -> None:
    """A route naming a tool no module defines fails with the file and key path."""
    config = with_tools(example_config_path().read_text())
    (tmp_path / "callcenter.toml").write_text(config)
    (tmp_path / "shop_tools.py").write_text(TOOLS_MODULE.replace("check_stock", "other_tool"))
    result = run("check-config", "callcenter.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "callcenter.toml" in result.stderr
    assert "check_stock" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_reports_a_syntax_error_without_a_traceback(tmp_path: Path) -> None:
    """A TOML syntax error is one line naming the file and line."""
    shutil.copy(example_config_path(), tmp_path / "callcenter.toml")
    with (tmp_path / "callcenter.toml").open("a") as config:
        config.write("\n[limits\n")
    result = run("check-config", "callcenter.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert "callcenter.toml:" in result.stderr
    assert "Traceback" not in result.stderr
