"""CPU of one accept request on the client's thread: the SDK as callcenter and as the docs'
sample call it, against plain HTTP clients sending the same request.

Why this exists: both systems in bench/intake_vs_sample.py send the accept through the SDK,
so that request's cost is a floor under either one's webhook → accept time. Every client here
sends the same ``POST /v1/realtime/calls/{id}/accept`` (the example config's support route as
its JSON body) over one kept-alive connection to a bare loopback HTTP server in this process,
which answers 200 at once; only the client thread's CPU time is counted, so the server and a
busy machine move the figures little. Per client, the median over ``--rounds`` rounds of
``--requests`` requests, in CPU microseconds per request:

- ``sdk_callcenter``: ``realtime.calls.accept(call_id, type=..., extra_body=body)``, as
  :class:`callcenter.control.CallControl` calls it (no retries, a timeout per request);
- ``sdk_docs_sample``: ``realtime.calls.accept(call_id, **body)``, as the docs' sample calls it
  (the SDK walks the body through its ``CallAcceptParams`` transform);
- ``httpx``: ``httpx.Client.post`` with the JSON body (the HTTP client under the SDK is a fork
  of httpx);
- ``http_client``: the standard library's ``http.client.HTTPConnection``.

    python bench/accept_cost.py --out bench/results/accept_cost.json
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
from _machine import run_facts

from callcenter.config.loader import example_config_path, load_config, session_config
from callcenter.tools.registry import load_tools

CALL_ID = "rtc_" + "0" * 32
PATH = f"/v1/realtime/calls/{CALL_ID}/accept"
API_KEY = "sk-bench-accept"
CLIENTS = ("sdk_callcenter", "sdk_docs_sample", "httpx", "http_client")


class _Accepting(http.server.BaseHTTPRequestHandler):
    """Reads the request and answers 200 with no body, keeping the connection."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def accept_body() -> dict[str, Any]:
    """The example config's support route, as callcenter accepts its calls."""
    config = load_config(example_config_path())
    tools = load_tools(config.tool_modules, default_timeout=config.tool_timeout, file=config.path)
    route = next(route for route in config.routes if route.name == "support")
    return dict(session_config(route, config, tools))


def clients(port: int, body: dict[str, Any]) -> dict[str, Callable[[], None]]:
    """One accept request per call, per client."""
    base = f"http://127.0.0.1:{port}"
    sdk = openai.OpenAI(api_key=API_KEY, base_url=base + "/v1", max_retries=0)
    kind = body["type"]
    rest = {key: value for key, value in body.items() if key != "type"}
    plain = httpx.Client(base_url=base, headers={"authorization": f"Bearer {API_KEY}"})
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}

    def stdlib() -> None:
        connection.request("POST", PATH, body=json.dumps(body).encode(), headers=headers)
        connection.getresponse().read()

    return {
        "sdk_callcenter": lambda: sdk.realtime.calls.accept(
            CALL_ID, type=kind, extra_body=rest, timeout=2.0
        ),
        "sdk_docs_sample": lambda: sdk.realtime.calls.accept(CALL_ID, **body),
        "httpx": lambda: plain.post(PATH, json=body, timeout=2.0).raise_for_status(),
        "http_client": stdlib,
    }


def cpu_us_per_request(request: Callable[[], None], requests: int) -> float:
    """This thread's CPU microseconds per request, over ``requests`` requests."""
    started = time.thread_time()
    for _ in range(requests):
        request()
    return round((time.thread_time() - started) / requests * 1e6, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Serve, warm every client up, then time them round by round, interleaved."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accepting)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="accept-server", daemon=True).start()
    try:
        body = accept_body()
        requests = clients(server.server_address[1], body)
        for request in requests.values():
            cpu_us_per_request(request, args.warmup)
        rounds = [
            {name: cpu_us_per_request(request, args.requests) for name, request in requests.items()}
            for _ in range(args.rounds)
        ]
    finally:
        server.shutdown()
        server.server_close()
    return {
        "benchmark": "accept_cost",
        "unit": "CPU microseconds per accept request, client thread",
        "requests_per_round": args.requests,
        "body_bytes": len(json.dumps(body)),
        "median": {name: statistics.median(r[name] for r in rounds) for name in CLIENTS},
        "rounds": rounds,
        **run_facts(),
    }


def main() -> int:
    """Parse arguments, run, write and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=200, help="requests before the rounds")
    parser.add_argument("--out", type=Path, default=Path("bench/results/accept_cost.json"))
    args = parser.parse_args()
    report = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
