"""The deploy kit (deploy/): each file checked by the tool that will read it, where one exists.

gunicorn.conf.py runs under real gunicorn; the systemd unit goes through systemd-analyze; the
nginx config through ``nginx -t`` and then real nginx in front of a real backend; the compose
file, the Kubernetes manifests and the Dockerfile are parsed and checked for what they must
hold, and against each other. Tests whose tool is missing skip and say which package has it.
"""

from __future__ import annotations

import json
import os
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from gunicorn.config import Config as GunicornConfig
from gunicorn.glogging import Logger as GunicornLogger
from werkzeug.serving import make_server

from callcenter.config.loader import example_config_path, parse_config
from callcenter.web import server
from callcenter.web.serve_process import free_port
from tests.harness import API_KEY, SERVE_POLL_INTERVAL, WEBHOOK_SECRET, wait_for

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
UNIT = DEPLOY / "systemd" / "callcenter.service"
NGINX_CONF = DEPLOY / "nginx" / "callcenter.conf"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "docker" / "compose.yaml"
K8S = DEPLOY / "k8s"
ENV_TEMPLATE = DEPLOY / "callcenter.env.example"
GUNICORN_VARIABLES = ("CALLCENTER_BIND", "CALLCENTER_WORKERS", "CALLCENTER_THREADS")


def tool(name: str, package: str) -> str:
    """The path of a command-line tool, or skip the test naming the Debian package."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package: {package})")
    return found


# -- gunicorn.conf.py -------------------------------------------------------------------------


def load_gunicorn_conf(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    """Execute the config file as gunicorn does, with ``env`` as its only tuning variables."""
    for name in (*GUNICORN_VARIABLES, "CALLCENTER_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(GUNICORN_CONF), run_name="__config__")


def test_gunicorn_conf_selects_gthread_and_safe_lifetimes(monkeypatch: pytest.MonkeyPatch) -> None:
    """gthread with 8 threads, no preload, no recycling, and a shutdown shorter than systemd's."""
    conf = load_gunicorn_conf(monkeypatch)
    assert conf["wsgi_app"] == "callcenter.web.app:create_app()"
    assert (conf["worker_class"], conf["threads"]) == ("gthread", 8)
    assert 2 <= conf["workers"] <= 8
    assert (conf["preload_app"], conf["max_requests"]) == (False, 0)
    assert (conf["timeout"], conf["graceful_timeout"], conf["keepalive"]) == (30, 20, 5)
    assert conf["bind"] == ["127.0.0.1:8080"]
    assert (conf["accesslog"], conf["errorlog"], conf["loglevel"]) == ("-", "-", "info")
    assert conf["control_socket_disable"] is True


def test_gunicorn_conf_releases_calls_like_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """worker_exit is the hook `callcenter serve` installs, so both release calls alike."""
    conf = load_gunicorn_conf(monkeypatch)
    assert conf["worker_exit"] is server.gunicorn_options("x:1", 1, 1, "info", False)["worker_exit"]


def test_gunicorn_conf_reads_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bind addresses, workers, threads and log level come from CALLCENTER_* variables."""
    conf = load_gunicorn_conf(
        monkeypatch,
        CALLCENTER_BIND="0.0.0.0:9000, [::1]:9000",
        CALLCENTER_WORKERS="3",
        CALLCENTER_THREADS="16",
        CALLCENTER_LOG_LEVEL="DEBUG",
    )
    assert conf["bind"] == ["0.0.0.0:9000", "[::1]:9000"]
    assert (conf["workers"], conf["threads"], conf["loglevel"]) == (3, 16, "debug")


def test_gunicorn_conf_caps_streams_at_half_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers get CALLCENTER_MAX_STREAMS: half of CALLCENTER_THREADS, unless it is set."""
    monkeypatch.delenv("CALLCENTER_MAX_STREAMS", raising=False)
    conf = load_gunicorn_conf(monkeypatch, CALLCENTER_THREADS="16")
    assert conf["raw_env"] == ["CALLCENTER_MAX_STREAMS=8"]
    conf = load_gunicorn_conf(monkeypatch, CALLCENTER_THREADS="16", CALLCENTER_MAX_STREAMS="3")
    assert conf["raw_env"] == ["CALLCENTER_MAX_STREAMS=3"]


def test_gunicorn_accepts_every_setting_of_the_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each value passes gunicorn's own validators, and gunicorn resolves the worker to gthread."""
    conf = load_gunicorn_conf(monkeypatch)
    config = GunicornConfig()
    applied = [name for name in conf if name in config.settings]
    for name in applied:
        config.set(name, conf[name])
    assert {"worker_class", "worker_exit", "on_starting", "logger_class", "wsgi_app"} <= set(
        applied
    )
    assert config.worker_class_str == "gthread"
    assert issubclass(config.logger_class, GunicornLogger)


@contextmanager
def gunicorn_running(data: Path) -> Iterator[dict[str, Any]]:
    """`gunicorn --config deploy/gunicorn.conf.py` on loopback with a fresh SQLite file."""
    port = free_port()
    env = {
        **os.environ,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "CALLCENTER_CONFIG": str(example_config_path()),
        "CALLCENTER_DATA_DIR": str(data),
        "CALLCENTER_BIND": f"127.0.0.1:{port}",
        "CALLCENTER_WORKERS": "2",
        "CALLCENTER_THREADS": "2",
    }
    env.pop("CALLCENTER_DATABASE_URL", None)
    env.pop("GUNICORN_CMD_ARGS", None)
    stdout, stderr = data / "stdout.log", data / "stderr.log"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF)],
            env=env,
            cwd=data,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError("gunicorn exited:\n" + stderr.read_text())
        try:
            return httpx.get(url + "/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=30, what="gunicorn to be ready")
        yield {"url": url, "process": process, "stdout": stdout, "stderr": stderr, "data": data}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def gunicorn_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One gunicorn for the tests that only send it requests."""
    with gunicorn_running(tmp_path_factory.mktemp("gunicorn")) as served:
        yield served


def test_gunicorn_master_migrates_before_workers_serve(gunicorn_served: dict[str, Any]) -> None:
    """/readyz answers 200 only with a migrated database: the master migrated the new file."""
    assert (gunicorn_served["data"] / "callcenter.db").is_file()
    assert '"msg": "store migrated' in gunicorn_served["stderr"].read_text()


def test_access_log_is_one_json_object_per_request(gunicorn_served: dict[str, Any]) -> None:
    """Each request is a JSON line on stdout, with the proxy's client address and request id."""
    headers = {
        "X-Forwarded-For": "203.0.113.7",
        "X-Request-ID": "req-42",
        "User-Agent": 'quote" and \\ backslash',
    }
    assert httpx.get(gunicorn_served["url"] + "/healthz", headers=headers).status_code == 200

    def logged() -> dict[str, Any] | None:
        for line in gunicorn_served["stdout"].read_text().splitlines():
            entry: dict[str, Any] = json.loads(line)
            if entry.get("request_id") == "req-42":
                return entry
        return None

    wait_for(logged, what="the access log line")
    entry = logged()
    assert entry is not None
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/healthz", 200)
    assert (entry["forwarded_for"], entry["user_agent"]) == ("203.0.113.7", headers["User-Agent"])
    assert entry["logger"] == "gunicorn.access"
    assert isinstance(entry["duration_ms"], float)


def test_error_log_is_json_lines(gunicorn_served: dict[str, Any]) -> None:
    """gunicorn's own messages and callcenter's share one JSON shape on stderr."""
    lines = gunicorn_served["stderr"].read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    loggers = {entry["logger"] for entry in entries}
    assert {"gunicorn.error", "callcenter.web.app"} <= loggers
    assert any(entry["msg"] == "Using worker: gthread" for entry in entries)


def test_docker_healthcheck_command_passes_against_a_running_server(
    gunicorn_served: dict[str, Any],
) -> None:
    """The Dockerfile's HEALTHCHECK command exits 0 against a live server."""
    command = json.loads(dockerfile_instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    assert command[0] == "python"
    port = gunicorn_served["url"].rsplit(":", 1)[1]
    env = {**os.environ, "CALLCENTER_BIND": f"0.0.0.0:{port}"}
    result = subprocess.run([sys.executable, *command[1:]], env=env, timeout=10, check=False)
    assert result.returncode == 0


def test_docker_healthcheck_command_fails_without_a_server() -> None:
    """…and exits non-zero when nothing answers."""
    command = json.loads(dockerfile_instruction("HEALTHCHECK").split(" CMD ", 1)[1])
    env = {**os.environ, "CALLCENTER_BIND": f"0.0.0.0:{free_port()}"}
    result = subprocess.run(
        [sys.executable, *command[1:]], env=env, timeout=10, check=False, capture_output=True
    )
    assert result.returncode != 0


def test_gunicorn_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM, as systemd and Kubernetes send it: workers exit, the master exits 0."""
    with gunicorn_running(tmp_path) as served:
        process: subprocess.Popen[bytes] = served["process"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    log = served["stderr"].read_text()
    assert log.count('"msg": "Worker exiting') == 2
    assert '"msg": "Shutting down: Master"' in log


def test_gunicorn_refuses_to_start_with_a_bad_config(tmp_path: Path) -> None:
    """The master checks the config before binding: a one-line error, exit 1, no traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[routes]]\nname = "x"\naction = "dance"\n')
    env = {
        **os.environ,
        "OPENAI_API_KEY": API_KEY,
        "OPENAI_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "CALLCENTER_CONFIG": str(bad),
        "CALLCENTER_DATA_DIR": str(tmp_path),
        "CALLCENTER_BIND": f"127.0.0.1:{free_port()}",
    }
    env.pop("CALLCENTER_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert f"Error: callcenter cannot start: {bad}:3: routes[0].action" in result.stderr
    assert "Traceback" not in result.stderr


# -- systemd ----------------------------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    """Every Key=value of the unit, in order (keys may repeat)."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def installable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's gunicorn, which exists here."""
    unit = tmp_path / "callcenter.service"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    unit.write_text(UNIT.read_text().replace("/opt/callcenter/bin/gunicorn", str(gunicorn)))
    return unit


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing to say about the unit."""
    analyze = tool("systemd-analyze", "systemd")
    unit = installable_unit(tmp_path)
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert str(unit) not in result.stderr, result.stderr


def test_systemd_unit_exposure_is_low(tmp_path: Path) -> None:
    """systemd-analyze security rates the unit's exposure at 2.0 or less (0 safe, 10 exposed)."""
    analyze = tool("systemd-analyze", "systemd")
    unit = installable_unit(tmp_path)
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:]


def test_systemd_unit_is_hardened() -> None:
    """The hardening the issue asks for is spelled out in the unit."""
    settings = unit_settings()
    expected = {
        "DynamicUser": "yes",
        "StateDirectory": "callcenter",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "EnvironmentFile": "/etc/callcenter/callcenter.env",
        "Type": "notify",
        "KillMode": "mixed",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], key


def test_systemd_unit_runs_the_deploy_gunicorn_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    """ExecStart runs gunicorn with the conf, and systemd waits longer than gunicorn's shutdown."""
    settings = unit_settings()
    assert settings["ExecStart"] == [
        "/opt/callcenter/bin/gunicorn --config /etc/callcenter/gunicorn.conf.py"
    ]
    conf = load_gunicorn_conf(monkeypatch)
    assert int(settings["TimeoutStopSec"][0]) > conf["graceful_timeout"] + 10


def test_env_template_sets_no_secret_and_covers_every_variable() -> None:
    """Every variable is present (set empty or commented out); the file says to keep it 0600."""
    text = ENV_TEMPLATE.read_text()
    assignments = [
        line.lstrip("#").partition("=")
        for line in text.splitlines()
        if "=" in line and line.lstrip("#").split("=", 1)[0].isupper()
    ]
    names = {name for name, _, _ in assignments}
    required = {"OPENAI_API_KEY", "OPENAI_WEBHOOK_SECRET", "CALLCENTER_OPERATOR_TOKENS"}
    optional = {
        "OPENAI_BASE_URL",
        "CALLCENTER_DATABASE_URL",
        "CALLCENTER_CONFIG",
        "CALLCENTER_CONTROL_DEADLINE",
        *GUNICORN_VARIABLES,
        "CALLCENTER_LOG_LEVEL",
    }
    assert required | optional <= names
    for line in text.splitlines():
        name, equals, value = line.partition("=")
        if equals and name in required:
            assert value == "", f"{name} must be empty in the template"
    assert "0600" in text


# -- nginx ------------------------------------------------------------------------------------


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for callcenter.example.com."""
    openssl = tool("openssl", "openssl")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=callcenter.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def nginx_setup(
    directory: Path,
    *,
    http_port: int = 80,
    https_port: int = 443,
    upstream_port: int = 8080,
) -> Path:
    """deploy/nginx/callcenter.conf inside a minimal nginx.conf, with paths into ``directory``.

    Only what a test machine needs changes: certificates, log paths, ports, and IPv6
    listeners (which not every CI container has).
    """
    cert, key = self_signed_certificate(directory)
    live = "/etc/letsencrypt/live/callcenter.example.com"
    site = (
        NGINX_CONF.read_text()
        .replace(f"{live}/fullchain.pem", str(cert))
        .replace(f"{live}/privkey.pem", str(key))
        .replace("/var/log/nginx/", f"{directory}/")
        .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
        .replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{upstream_port};")
    )
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    (directory / "site.conf").write_text(site)
    main = directory / "nginx.conf"
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main.write_text(
        f"{user}daemon off;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        "events {}\n"
        f"http {{\n    client_body_temp_path {directory}/body;\n"
        f"    proxy_temp_path {directory}/proxy;\n    include {directory}/site.conf;\n}}\n"
    )
    return main


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    """nginx -t accepts the config as shipped (certificates and log paths aside)."""
    nginx = tool("nginx", "nginx-light")
    main = nginx_setup(tmp_path)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Real nginx with the shipped config in front of a backend that shows what it receives."""
    nginx = tool("nginx", "nginx-light")
    release = threading.Event()

    def backend(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"].endswith("/stream"):
            start_response("200 OK", [("Content-Type", "text/event-stream")])
            return stream(release)
        seen = {key: value for key, value in environ.items() if key.startswith("HTTP_X_")}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(seen).encode()]

    upstream = make_server("127.0.0.1", 0, backend, threaded=True)
    upstream_thread = threading.Thread(
        target=upstream.serve_forever, args=(SERVE_POLL_INTERVAL,), daemon=True
    )
    upstream_thread.start()
    http_port, https_port = free_port(), free_port()
    main = nginx_setup(
        tmp_path, http_port=http_port, https_port=https_port, upstream_port=upstream.server_port
    )
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(main)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"nginx exited: {process.stderr.read() if process.stderr else ''!r}"
            )
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", https_port)) == 0

    try:
        wait_for(listening, what="nginx to listen")
        with httpx.Client(base_url=f"https://127.0.0.1:{https_port}", verify=False) as client:
            yield {"client": client, "release": release, "http_port": http_port}
    finally:
        release.set()
        process.terminate()
        process.wait(timeout=10)
        upstream.shutdown()
        upstream_thread.join(timeout=5)


def stream(release: threading.Event) -> Iterator[bytes]:
    yield b"data: first\n\n"
    release.wait(timeout=10)
    yield b"data: last\n\n"


def test_nginx_passes_the_real_client_address(proxied: dict[str, Any]) -> None:
    """The backend learns the client's address, the scheme and a request id."""
    seen = proxied["client"].get("/api/v1/calls", headers={"X-Forwarded-For": "198.51.100.9"})
    headers = seen.json()
    assert headers["HTTP_X_REAL_IP"] == "127.0.0.1"
    assert headers["HTTP_X_FORWARDED_FOR"] == "198.51.100.9, 127.0.0.1"
    assert headers["HTTP_X_FORWARDED_PROTO"] == "https"
    assert len(headers["HTTP_X_REQUEST_ID"]) == 32
    assert "max-age=" in seen.headers["Strict-Transport-Security"]


def test_nginx_streams_call_events_without_buffering(proxied: dict[str, Any]) -> None:
    """The first event of a live transcript reaches the client while the stream is still open.

    The backend holds the stream open for up to 10 s after the first event; nginx holding
    the event back would make the client's 3 s read time out.
    """
    timeout = httpx.Timeout(10.0, read=3.0)
    with proxied["client"].stream("GET", "/api/v1/calls/rtc_1/stream", timeout=timeout) as response:
        chunks = response.iter_bytes()
        assert next(chunks) == b"data: first\n\n"
        proxied["release"].set()
        assert b"".join(chunks) == b"data: last\n\n"


def test_nginx_refuses_bodies_over_1m(proxied: dict[str, Any]) -> None:
    """A body over 1 MiB is refused by nginx with 413 before it reaches callcenter."""
    answer = proxied["client"].post("/webhooks/openai", content=b"x" * (1024 * 1024 + 1))
    assert answer.status_code == 413


def test_nginx_keeps_metrics_off_the_internet(proxied: dict[str, Any]) -> None:
    """/metrics is for loopback only; other clients get 403 (here the client is loopback)."""
    site = NGINX_CONF.read_text()
    block = site[site.index("location = /metrics") :].split("}", 1)[0]
    assert "deny all;" in block
    assert proxied["client"].get("/metrics").status_code == 200


def test_nginx_redirects_plain_http_to_https(proxied: dict[str, Any]) -> None:
    """Port 80 sends browsers to https."""
    answer = httpx.get(f"http://127.0.0.1:{proxied['http_port']}/console")
    assert answer.status_code == 301
    assert answer.headers["Location"].startswith("https://")


# -- docker -----------------------------------------------------------------------------------


def dockerfile_lines() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def dockerfile_instruction(name: str) -> str:
    """The last instruction called ``name`` (arguments only)."""
    found = [line for line in dockerfile_lines() if line.split(" ", 1)[0] == name]
    assert found, f"no {name} in the Dockerfile"
    return found[-1].split(" ", 1)[1]


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    """A build stage and a runtime stage, both from python:3.11-slim."""
    lines = dockerfile_lines()
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in lines
    assert stages[0] == "FROM ${PYTHON_IMAGE} AS build"
    assert "COPY --from=build /opt/callcenter /opt/callcenter" in lines


def test_dockerfile_runs_as_a_non_root_user() -> None:
    """The runtime stage ends as an unprivileged numeric user."""
    lines = dockerfile_lines()
    last_from = max(i for i, line in enumerate(lines) if line.startswith("FROM "))
    users = [line.split(" ", 1)[1] for line in lines[last_from:] if line.startswith("USER ")]
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 1000


def test_dockerfile_checks_health_and_runs_the_deploy_conf() -> None:
    """HEALTHCHECK probes /healthz; CMD runs gunicorn with the copied deploy/gunicorn.conf.py."""
    assert "/healthz" in dockerfile_instruction("HEALTHCHECK")
    assert json.loads(dockerfile_instruction("CMD")) == [
        "gunicorn",
        "--config",
        "/etc/callcenter/gunicorn.conf.py",
    ]
    assert "COPY deploy/gunicorn.conf.py /etc/callcenter/gunicorn.conf.py" in dockerfile_lines()
    assert dockerfile_instruction("EXPOSE") == "8080"
    assert "CALLCENTER_BIND=0.0.0.0:8080" in dockerfile_instruction("ENV")


def test_docker_build_context_keeps_what_the_build_copies() -> None:
    """Every path the .dockerignore lets through exists, and covers each COPY source."""
    ignore = DOCKERFILE.with_name("Dockerfile.dockerignore").read_text().splitlines()
    kept = [line[1:] for line in ignore if line.startswith("!")]
    for path in kept:
        assert (REPO / path).exists(), path
    for line in dockerfile_lines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _ = shlex.split(line)[1:]
            for source in sources:
                assert any(source.rstrip("/").startswith(path) for path in kept), source


# -- compose ----------------------------------------------------------------------------------


def test_compose_runs_callcenter_after_a_healthy_postgres() -> None:
    """Two services; callcenter waits for PostgreSQL's healthcheck and has its own."""
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "callcenter"}
    postgres, callcenter = services["postgres"], services["callcenter"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert callcenter["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "/readyz" in " ".join(callcenter["healthcheck"]["test"])
    assert "postgres-data" in compose["volumes"]


def test_compose_builds_the_image_and_wires_its_paths() -> None:
    """The build context and Dockerfile exist; the config lands where the image looks for it."""
    callcenter = yaml.safe_load(COMPOSE.read_text())["services"]["callcenter"]
    context = (COMPOSE.parent / callcenter["build"]["context"]).resolve()
    assert context == REPO
    assert (context / callcenter["build"]["dockerfile"]).resolve() == DOCKERFILE
    config_env = "CALLCENTER_CONFIG=/etc/callcenter/config/callcenter.toml"
    assert config_env in dockerfile_instruction("ENV")
    assert "./callcenter.toml:/etc/callcenter/config/callcenter.toml:ro" in callcenter["volumes"]
    assert callcenter["environment"]["CALLCENTER_DATABASE_URL"].startswith(
        "postgresql+psycopg://callcenter:"
    )
    assert callcenter["env_file"] == ["callcenter.env"]


def test_compose_confines_the_callcenter_container() -> None:
    """Read-only root, no capabilities, no privilege escalation, published on loopback only."""
    callcenter = yaml.safe_load(COMPOSE.read_text())["services"]["callcenter"]
    assert callcenter["read_only"] is True
    assert callcenter["cap_drop"] == ["ALL"]
    assert callcenter["security_opt"] == ["no-new-privileges:true"]
    assert callcenter["ports"] == ["127.0.0.1:8080:8080"]


# -- kubernetes -------------------------------------------------------------------------------


def k8s_documents() -> dict[str, dict[str, Any]]:
    """Every manifest of the kustomization, by kind."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for document in yaml.safe_load_all((K8S / name).read_text()):
            assert {"apiVersion", "kind", "metadata"} <= document.keys(), name
            assert document["metadata"]["name"], name
            found[document["kind"]] = document
    return found


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = k8s_documents()["Deployment"]["spec"]["template"]["spec"]
    return spec


def test_kustomization_lists_every_manifest() -> None:
    """Each YAML file in deploy/k8s is a resource of the kustomization (and nothing else is)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert set(k8s_documents()) == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }


def test_kubectl_kustomize_renders_the_manifests() -> None:
    """kubectl builds the kustomization offline."""
    kubectl = tool("kubectl", "kubectl (from the Kubernetes apt repository)")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kinds = [document["kind"] for document in yaml.safe_load_all(result.stdout)]
    assert sorted(kinds) == sorted(k8s_documents())


def test_deployment_probes_readiness_and_liveness() -> None:
    """Readiness on /readyz, liveness and start-up on /healthz, all on the container's port."""
    [container] = pod_spec()["containers"]
    port_names = {port["name"] for port in container["ports"]}
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert {probe["port"] for probe in probes.values()} <= port_names


def test_deployment_drains_before_gunicorn_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """preStop sleeps; the grace period covers the sleep and gunicorn's graceful shutdown."""
    spec = pod_spec()
    [container] = spec["containers"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    conf = load_gunicorn_conf(monkeypatch)
    needed = int(command[1]) + conf["graceful_timeout"]
    assert spec["terminationGracePeriodSeconds"] > needed


def test_deployment_runs_unprivileged() -> None:
    """Non-root, no privilege escalation, read-only root, no capabilities, RuntimeDefault."""
    spec = pod_spec()
    [container] = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    writable = {
        mount["mountPath"] for mount in container["volumeMounts"] if not mount.get("readOnly")
    }
    assert {"/tmp", "/var/lib/callcenter"} <= writable


def test_deployment_reads_secret_and_config_from_their_objects() -> None:
    """envFrom names the Secret; the ConfigMap mounts where CALLCENTER_CONFIG points."""
    documents = k8s_documents()
    spec = pod_spec()
    [container] = spec["containers"]
    assert container["envFrom"] == [
        {"secretRef": {"name": documents["Secret"]["metadata"]["name"]}}
    ]
    env = {item["name"]: item for item in container["env"]}
    config_path = Path(env["CALLCENTER_CONFIG"]["value"])
    [config_volume] = [v for v in spec["volumes"] if "configMap" in v]
    assert config_volume["configMap"]["name"] == documents["ConfigMap"]["metadata"]["name"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == config_volume["name"]]
    assert Path(mount["mountPath"]) == config_path.parent
    assert config_path.name in documents["ConfigMap"]["data"]
    assert env["CALLCENTER_WORKERS"]["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"


def test_configmap_holds_a_valid_config() -> None:
    """The TOML in the ConfigMap passes callcenter's own validation."""
    data = k8s_documents()["ConfigMap"]["data"]
    config = parse_config(data["callcenter.toml"], "configmap.yaml")
    assert config.routes


def test_secret_template_holds_the_keys_and_no_values() -> None:
    """The Secret names every secret variable, all empty in the repository."""
    secret = k8s_documents()["Secret"]
    assert secret["stringData"] == {
        "OPENAI_API_KEY": "",
        "OPENAI_WEBHOOK_SECRET": "",
        "CALLCENTER_DATABASE_URL": "",
        "CALLCENTER_OPERATOR_TOKENS": "",
    }


def test_service_and_budget_select_the_pods() -> None:
    """The Service and the PodDisruptionBudget select the Deployment's pods by their labels."""
    documents = k8s_documents()
    deployment = documents["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = documents["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    [container] = pod_spec()["containers"]
    assert service["ports"][0]["targetPort"] in {port["name"] for port in container["ports"]}
    budget = documents["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["minAvailable"] < deployment["spec"]["replicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
