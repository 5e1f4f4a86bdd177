"""``callcenter doctor``: checks of a deployment, each one returning a :class:`CheckResult`.

The checks print nothing and exit nothing; the command prints their results. Those that need
no I/O (secrets, models, worker class, the webhook probe's answer) are pure functions; the
others read the file, database or URL they check and turn every failure into a result.
Secrets never appear in a result: only their public prefix (``sk-proj-``, ``whsec_``) and
four characters after it.
"""

from __future__ import annotations

import enum
import json
import runpy
import shlex
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Final

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from callcenter.cli.http_probe import ProbeAnswer, probe
from callcenter.config.catalog import ModelCatalog, sdk_model_catalog
from callcenter.config.loader import Config, load_config
from callcenter.errors import ConfigError, StoreError
from callcenter.settings import parse_webhook_secrets
from callcenter.sip.trunk import SIP_HOSTS, base_url_of, region_of_base_url
from callcenter.store.engine import create_store_engine
from callcenter.store.versioning import current_revision, head_revision

__all__ = [
    "CheckResult",
    "Status",
    "check_api_key",
    "check_config",
    "check_database",
    "check_gunicorn",
    "check_models",
    "check_region",
    "check_webhook_secrets",
    "check_webhook_url",
    "judge_webhook_answer",
    "judge_worker_class",
    "mask_secret",
    "run_checks",
]

DEPRECATIONS_URL: Final = "https://developers.openai.com/api/docs/deprecations"
_SECRET_PREFIXES: Final = ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-", "whsec_")
_PROBE_BODY: Final = b'{"type": "callcenter.cli.doctor.probe"}'


class Status(enum.Enum):
    """How a check went: FAIL makes ``callcenter doctor`` exit non-zero."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check: what was found and, unless OK, the one-line fix."""

    name: str
    status: Status
    message: str
    fix: str | None = None


def mask_secret(value: str) -> str:
    """``sk-proj-AbCd… (164 chars)``: the public prefix, four characters, and the length."""
    prefix = next((p for p in _SECRET_PREFIXES if value.startswith(p)), "")
    shown = value[: len(prefix) + 4] if len(value) - len(prefix) >= 20 else prefix
    return f"{shown}… ({len(value)} chars)"


def run_checks(
    environ: Mapping[str, str],
    *,
    config_path: str | None,
    database_url: str,
    gunicorn_config: Path | None,
    webhook_url: str | None,
    today: date,
    timeout: float = 5.0,
    sip_region: str = "us",
) -> list[CheckResult]:
    """Every check, in the order an operator fixes things."""
    config_result, config = check_config(config_path, today)
    results = [config_result]
    if config is not None:
        results.extend(check_models(config, sdk_model_catalog(), today))
    results.append(check_api_key(environ.get("OPENAI_API_KEY")))
    results.append(check_region(sip_region, environ.get("OPENAI_BASE_URL")))
    results.append(check_webhook_secrets(environ.get("OPENAI_WEBHOOK_SECRET")))
    results.append(check_database(database_url))
    results.append(check_gunicorn(gunicorn_config, environ.get("GUNICORN_CMD_ARGS", "")))
    if webhook_url is not None:
        results.append(check_webhook_url(webhook_url, timeout))
    return results


# -- config and models ------------------------------------------------------------------------


def check_config(path: str | None, today: date | None = None) -> tuple[CheckResult, Config | None]:
    """Load and validate the TOML config; the Config comes back when it is valid."""
    if not path:
        fix = "set CALLCENTER_CONFIG (or pass --config FILE) to the TOML config file"
        return CheckResult("config", Status.FAIL, "CALLCENTER_CONFIG is not set", fix), None
    try:
        config = load_config(path, today=today)
    except ConfigError as exc:
        fix = f"correct it, then `callcenter check-config {path}` checks the file again"
        return CheckResult("config", Status.FAIL, str(exc), fix), None
    return CheckResult("config", Status.OK, config.summary()), config


def check_models(config: Config, catalog: ModelCatalog | None, today: date) -> list[CheckResult]:
    """Flag every model in use with an announced shutdown, or one the SDK does not know."""
    users: dict[str, list[str]] = {config.openai.model: ["[openai].model"]}
    for route in config.routes:
        if route.model:
            users.setdefault(route.model, []).append(f'route "{route.name}"')
    if catalog is None:
        message = "cannot read the model list of the installed openai SDK"
        fix = f"check {', '.join(sorted(users))} against {DEPRECATIONS_URL} by hand"
        return [CheckResult("models", Status.WARN, message, fix)]
    results: list[CheckResult] = []
    for model, places in sorted(users.items()):
        where = f"{model} (used by {', '.join(places)})"
        shutdown = catalog.shutdowns.get(model)
        replace = (
            f"move to a model without a shutdown date (e.g. gpt-realtime-2); see {DEPRECATIONS_URL}"
        )
        if shutdown is not None and shutdown <= today:
            message = f"{where} was shut down on {shutdown.isoformat()}"
            results.append(CheckResult("models", Status.FAIL, message, replace))
        elif shutdown is not None:
            days = (shutdown - today).days
            message = f"{where} has an announced shutdown on {shutdown.isoformat()}, in {days} days"
            results.append(CheckResult("models", Status.WARN, message, replace))
        elif model not in catalog.known:
            message = f"{where} is not a Realtime model the installed openai SDK lists"
            fix = "check the spelling; a model released after this SDK is fine"
            results.append(CheckResult("models", Status.WARN, message, fix))
    if not results:
        message = f"{', '.join(sorted(users))}: no announced shutdown"
        results.append(CheckResult("models", Status.OK, message))
    return results


def check_region(sip_region: str, base_url: str | None) -> CheckResult:
    """The trunk's SIP region and OPENAI_BASE_URL agree: calls entering through the EU SIP
    host can be accepted only through the EU API, and the other way round."""
    wanted = base_url_of(sip_region)
    served = region_of_base_url(base_url)
    shown = base_url or "unset (the SDK's default, api.openai.com)"
    if served is None:
        message = f"OPENAI_BASE_URL {base_url} is not an OpenAI host; the region is not checked"
        return CheckResult("region", Status.OK, message)
    if served != sip_region:
        message = (
            f"the SIP region is {sip_region} ({SIP_HOSTS[sip_region]}) but OPENAI_BASE_URL is "
            f"{shown}: the accept will not find the calls"
        )
        fix = f"set OPENAI_BASE_URL={wanted} (or CALLCENTER_SIP_REGION={served})"
        return CheckResult("region", Status.FAIL, message, fix)
    return CheckResult("region", Status.OK, f"SIP {SIP_HOSTS[sip_region]} with {shown}")


# -- secrets ----------------------------------------------------------------------------------


def check_api_key(value: str | None) -> CheckResult:
    """OPENAI_API_KEY is set, is one word, and looks like a key that may call the calls API."""
    if not value:
        fix = "set OPENAI_API_KEY to a project or service-account key (sk-…)"
        return CheckResult("api key", Status.FAIL, "OPENAI_API_KEY is not set", fix)
    if value[0] in "\"'" or any(char.isspace() for char in value):
        message = f"OPENAI_API_KEY ({mask_secret(value)}) contains quotes or blanks"
        fix = "write the key alone after OPENAI_API_KEY=, without quotes or spaces"
        return CheckResult("api key", Status.FAIL, message, fix)
    if value.startswith("sk-admin-"):
        message = f"OPENAI_API_KEY ({mask_secret(value)}) is an admin key"
        fix = "use a project or service-account key: admin keys manage the organization"
        return CheckResult("api key", Status.WARN, message, fix)
    if not value.startswith("sk-"):
        message = f"OPENAI_API_KEY ({mask_secret(value)}) does not start with sk-"
        fix = "use a key from the project's API keys page (fine if a proxy issues its own keys)"
        return CheckResult("api key", Status.WARN, message, fix)
    return CheckResult("api key", Status.OK, f"OPENAI_API_KEY is set ({mask_secret(value)})")


def check_webhook_secrets(value: str | None) -> CheckResult:
    """OPENAI_WEBHOOK_SECRET holds one secret, or two while a rotation runs, each ``whsec_…``."""
    name = "webhook secret"
    try:
        secrets = parse_webhook_secrets(value or "")
    except ConfigError as exc:
        fix = "copy the endpoint's signing secret (whsec_…) into OPENAI_WEBHOOK_SECRET"
        return CheckResult(name, Status.FAIL, f"{exc.key}: {exc.reason}", fix)
    masked = ", ".join(mask_secret(secret) for secret in secrets)
    if any(secret[0] in "\"'" or secret[-1] in "\"'" for secret in secrets):
        message = f"OPENAI_WEBHOOK_SECRET ({masked}) contains quotes"
        fix = "write the secrets without quotes, separated by commas"
        return CheckResult(name, Status.FAIL, message, fix)
    odd = [str(index) for index, secret in enumerate(secrets) if not secret.startswith("whsec_")]
    if odd:
        message = f"OPENAI_WEBHOOK_SECRET[{', '.join(odd)}] does not start with whsec_ ({masked})"
        fix = "paste the signing secret exactly as OpenAI showed it; it starts with whsec_"
        return CheckResult(name, Status.WARN, message, fix)
    if len(secrets) > 2:
        message = f"OPENAI_WEBHOOK_SECRET holds {len(secrets)} secrets ({masked})"
        fix = "keep the new secret alone once the rotation is over"
        return CheckResult(name, Status.WARN, message, fix)
    if len(secrets) == 2:
        message = f"2 secrets, a rotation in progress ({masked})"
        return CheckResult(name, Status.OK, message)
    return CheckResult(name, Status.OK, f"OPENAI_WEBHOOK_SECRET is set ({masked})")


# -- database ---------------------------------------------------------------------------------


def check_database(url: str) -> CheckResult:
    """The database answers and its schema is at the revision this callcenter expects.

    A SQLite file that does not exist is reported, not created.
    """
    name = "database"
    try:
        parsed = make_url(url)
    except ArgumentError:
        fix = "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"
        return CheckResult(name, Status.FAIL, "CALLCENTER_DATABASE_URL is not a URL", fix)
    shown = parsed.render_as_string(hide_password=True)
    migrate = "run `callcenter migrate` with the same CALLCENTER_DATABASE_URL"
    database = parsed.database or ""
    is_file = parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if is_file and not database.startswith("file:") and not Path(database).is_file():
        return CheckResult(name, Status.FAIL, f"{shown}: the file does not exist", migrate)
    try:
        engine = create_store_engine(url)
    except StoreError as exc:
        return CheckResult(name, Status.FAIL, f"{shown}: {exc}", "correct CALLCENTER_DATABASE_URL")
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
    except SQLAlchemyError as exc:
        cause: BaseException = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            cause = exc.orig
        reason = " ".join(str(cause).split())
        if parsed.password:
            reason = reason.replace(parsed.password, "***")
        message = f"{shown}: cannot connect: {type(cause).__name__}: {reason}"
        fix = "check that the database server runs and the URL's host, port, user and database"
        return CheckResult(name, Status.FAIL, message, fix)
    finally:
        engine.dispose()
    head = head_revision()
    if current is None:
        return CheckResult(name, Status.FAIL, f"{shown}: reachable but not migrated", migrate)
    if current != head:
        message = f"{shown}: schema at revision {current}, this callcenter expects {head}"
        fix = f"{migrate} (if the database is newer, deploy the callcenter that migrated it)"
        return CheckResult(name, Status.FAIL, message, fix)
    return CheckResult(name, Status.OK, f"{shown}: reachable, schema at revision {head}")


# -- gunicorn ---------------------------------------------------------------------------------

_GTHREAD: Final = ("gthread", "gunicorn.workers.gthread.ThreadWorker")
_SYNC: Final = ("sync", "gunicorn.workers.sync.SyncWorker")
_MONKEY_PATCHING: Final = ("gevent", "eventlet")
_CMD_OPTIONS: Final = {
    "-k": "worker_class",
    "--worker-class": "worker_class",
    "--threads": "threads",
    "-c": "config",
    "--config": "config",
}


def check_gunicorn(config_file: Path | None, cmd_args: str) -> CheckResult:
    """The worker class gunicorn gets from ``config_file`` and ``GUNICORN_CMD_ARGS``.

    Without ``config_file``, the file named by ``-c`` in the arguments or ``./gunicorn.conf.py``
    is read, as gunicorn does; with neither file nor arguments, ``callcenter serve`` is assumed.
    """
    name = "gunicorn"
    try:
        args = _gunicorn_args(shlex.split(cmd_args))
    except ValueError as exc:
        fix = "quote GUNICORN_CMD_ARGS as a shell command line"
        return CheckResult(name, Status.FAIL, f"GUNICORN_CMD_ARGS cannot be split: {exc}", fix)
    default_file = Path("gunicorn.conf.py")
    file = config_file or (Path(args["config"]) if args.get("config") else None)
    if file is None and default_file.is_file():
        file = default_file
    if file is None and not {"worker_class", "threads"} & args.keys():
        return CheckResult(name, Status.OK, "`callcenter serve` runs gthread workers")
    if file is not None and not file.is_file():
        fix = "pass --gunicorn-config with the file the service runs with"
        return CheckResult(name, Status.FAIL, f"{file} does not exist", fix)
    worker_class: object = "sync"  # gunicorn's defaults
    threads: object = 1
    sources: list[str] = []
    if file is not None:
        try:
            values = runpy.run_path(str(file), run_name="__config__")
        except Exception as exc:  # the operator's own Python: whatever it raises is the finding
            message = f"{file} cannot be loaded: {type(exc).__name__}: {exc}"
            return CheckResult(name, Status.FAIL, message, f"run `python {file}` to see why")
        worker_class = values.get("worker_class", worker_class)
        threads = values.get("threads", threads)
        sources.append(str(file))
    if {"worker_class", "threads"} & args.keys():
        worker_class = args.get("worker_class", worker_class)
        threads = args.get("threads", threads)
        sources.append("GUNICORN_CMD_ARGS")
    try:
        thread_count = int(str(threads))
    except ValueError:
        message = f"{' + '.join(sources)}: threads = {threads!r} is not a number"
        return CheckResult(name, Status.FAIL, message, "set threads to a whole number such as 8")
    return judge_worker_class(_class_name(worker_class), thread_count, " + ".join(sources))


def judge_worker_class(worker_class: str, threads: int, source: str) -> CheckResult:
    """Whether gunicorn workers of ``worker_class`` with ``threads`` suit callcenter."""
    name = "gunicorn"
    gthread_fix = 'set worker_class = "gthread" and threads = 8, as deploy/gunicorn.conf.py does'
    if worker_class in _SYNC and threads > 1:
        worker_class = "gthread"  # gunicorn itself switches sync workers with threads to gthread
    if worker_class in _GTHREAD and threads == 1:
        message = f"{source}: gthread workers with 1 thread: one console stream blocks a worker"
        return CheckResult(name, Status.WARN, message, "set threads = 8 (or more)")
    if worker_class in _GTHREAD:
        return CheckResult(name, Status.OK, f"{source}: gthread workers, {threads} threads each")
    if worker_class in _SYNC:
        message = f"{source}: sync workers answer one request at a time; a console stream holds one"
        return CheckResult(name, Status.WARN, message, gthread_fix)
    if worker_class.split(".")[-1].lower().startswith(_MONKEY_PATCHING):
        message = (
            f"{source}: {worker_class} workers monkey-patch threads and sockets, which "
            "callcenter's runtime thread (asyncio) is not built for"
        )
        return CheckResult(name, Status.WARN, message, gthread_fix)
    message = f"{source}: {worker_class} workers; callcenter is built and tested with gthread"
    return CheckResult(name, Status.WARN, message, gthread_fix)


def _gunicorn_args(tokens: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    remaining = iter(tokens)
    for token in remaining:
        option, equals, value = token.partition("=")
        if token.startswith("--") and equals and option in _CMD_OPTIONS:
            found[_CMD_OPTIONS[option]] = value
        elif token in _CMD_OPTIONS:
            found[_CMD_OPTIONS[token]] = next(remaining, "")
        elif token[:2] in ("-k", "-c") and len(token) > 2:
            found[_CMD_OPTIONS[token[:2]]] = token[2:]
    return found


def _class_name(value: object) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


# -- public webhook URL -----------------------------------------------------------------------


def check_webhook_url(url: str, timeout: float) -> CheckResult:
    """Probe the public webhook URL and judge the answer; an unusable URL is not probed."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        message = f"{url!r} is not an http(s) URL"
        return CheckResult("webhook url", Status.FAIL, message, "give the full https://… URL")
    return judge_webhook_answer(url, probe(url, _PROBE_BODY, timeout))


def judge_webhook_answer(url: str, answer: ProbeAnswer) -> CheckResult:
    """A callcenter refuses an unsigned delivery with 400 or 401 and its JSON error body."""
    name = "webhook url"
    parts = urllib.parse.urlsplit(url)
    shown = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
    )
    status = answer.status
    if status is None:
        message = f"{shown}: no answer ({answer.error})"
        fix = "check DNS, firewall, TLS and proxy: OpenAI must reach this URL from the internet"
        return CheckResult(name, Status.FAIL, message, fix)
    if status in (400, 401) and _is_error_body(answer.body):
        message = f"{shown}: callcenter answers (HTTP {status} to an unsigned request)"
        if parts.scheme != "https":
            fix = "put TLS in front (deploy/nginx/callcenter.conf) and register the https URL"
            return CheckResult(name, Status.WARN, message + ", over plain http", fix)
        return CheckResult(name, Status.OK, message)
    if status in (400, 401):
        message = f"{shown}: HTTP {status}, but not callcenter's JSON error"
        fix = "make this URL reach callcenter's /webhooks/openai, not another service"
        return CheckResult(name, Status.WARN, message, fix)
    if 300 <= status < 400:
        message = f"{shown}: redirects (HTTP {status}) to {answer.location or 'another URL'}"
        return CheckResult(name, Status.FAIL, message, "register the URL it redirects to")
    if status == 404:
        message = f"{shown}: HTTP 404, nothing handles this path"
        fix = "the path is /webhooks/openai; check that the proxy forwards it to callcenter"
        return CheckResult(name, Status.FAIL, message, fix)
    if 200 <= status < 300:
        message = f"{shown}: HTTP {status} to an unsigned request, so this is not callcenter"
        fix = "point the URL at callcenter's /webhooks/openai, which refuses unsigned deliveries"
        return CheckResult(name, Status.FAIL, message, fix)
    if status >= 500:
        message = f"{shown}: HTTP {status}"
        fix = "the proxy cannot reach callcenter, or callcenter failed: check both logs"
        return CheckResult(name, Status.FAIL, message, fix)
    message = f"{shown}: HTTP {status}"
    fix = "callcenter answers 400 or 401 here; check what answers at this URL"
    return CheckResult(name, Status.FAIL, message, fix)


def _is_error_body(body: bytes) -> bool:
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    error = payload.get("error") if isinstance(payload, dict) else None
    return isinstance(error, dict) and isinstance(error.get("code"), str)
