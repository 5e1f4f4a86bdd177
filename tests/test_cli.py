"""The `callcenter` command line as a user runs it: the installed console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from callcenter.config.loader import example_config_path

CONSOLE_SCRIPT = Path(sys.executable).with_name("callcenter")

COMMANDS = (
    "calls",
    "check-config",
    "demo",
    "doctor",
    "emulator",
    "migrate",
    "notify",
    "serve",
    "simulate",
    "sip-uri",
    "webhooks",
)
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


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if not CONSOLE_SCRIPT.exists():
        pytest.skip(f"the console script is not installed at {CONSOLE_SCRIPT}")
    return subprocess.run(
        [str(CONSOLE_SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=None if env is None else {**os.environ, **env},
    )


def imported_modules(statement: str) -> list[str]:
    """Every module a fresh interpreter imports to run ``statement`` (``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return [line.rsplit("|", 1)[1].strip() for line in lines[1:]]  # [0] is the header


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


def test_importing_the_cli_loads_neither_aiohttp_nor_the_emulator() -> None:
    """import callcenter.cli.main loads no aiohttp and no callcenter.emulator module."""
    modules = imported_modules("import callcenter.cli.main")
    assert "callcenter.cli.main" in modules
    heavy = [
        name
        for name in modules
        if name.partition(".")[0] == "aiohttp" or name.startswith("callcenter.emulator")
    ]
    assert heavy == []


def test_help_lists_every_command(tmp_path: Path) -> None:
    """callcenter --help lists the commands of every module, lazily loaded ones included."""
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("Commands:", 1)[1].splitlines()
    names = [line.split()[0] for line in listed if line.startswith("  ")]
    assert names == sorted(COMMANDS)


def test_serve_reads_the_config_from_the_environment(tmp_path: Path) -> None:
    """serve without --config takes CALLCENTER_CONFIG, and names that file when it is missing."""
    missing = tmp_path / "nowhere.toml"
    env = {
        "CALLCENTER_CONFIG": str(missing),
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_WEBHOOK_SECRET": "whsec_" + "A" * 32,
    }
    result = run("serve", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert f"{missing}: cannot read the file" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_requires_a_config(tmp_path: Path) -> None:
    """serve with neither --config nor CALLCENTER_CONFIG is a usage error naming --config."""
    env = {key: value for key, value in os.environ.items() if key != "CALLCENTER_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-m", "callcenter", "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "Missing option '--config'" in result.stderr


def test_migrate_defaults_to_the_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    """migrate without --database-url creates the SQLite file the controller would open."""
    data = tmp_path / "data"
    data.mkdir()
    env = {"CALLCENTER_DATA_DIR": str(data), "CALLCENTER_DATABASE_URL": ""}
    result = run("migrate", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert (data / "callcenter.db").is_file()


def test_migrate_takes_the_database_url_from_the_environment(tmp_path: Path) -> None:
    """migrate without --database-url opens CALLCENTER_DATABASE_URL when it is set."""
    target = tmp_path / "named.db"
    env = {"CALLCENTER_DATABASE_URL": f"sqlite:///{target}", "CALLCENTER_DATA_DIR": str(tmp_path)}
    result = run("migrate", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert target.is_file()
    assert not (tmp_path / "callcenter.db").exists()
