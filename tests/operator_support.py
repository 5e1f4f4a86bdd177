"""Support for the operator tests: tokens, a controller with them, and an HTTP client."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from callcenter.emulator import EmulatedCall, EmulatorThread, ModelSay, Step, Wait, WaitFor
from tests.harness import InProcessController, wait_for
from tests.sideband_support import GREETING, SUPPORT, CallCenter

ADA = "ada-0123456789abcdef"
BOB = "bob-fedcba9876543210"
VERA = "vera-00112233445566"
TOKENS = f"ada:{ADA}:admin,bob:{BOB},vera:{VERA}:viewer"  # an admin, an operator, a viewer
GREETED: tuple[Step, ...] = (ModelSay(GREETING), WaitFor("output_audio_buffer.stopped"))
HOLD = Wait(30)  # the caller stays on the line until an operator acts


def operator_center(
    tmp_path: Path, emulator: EmulatorThread, env: dict[str, str], tokens: str = TOKENS
) -> CallCenter:
    """A CallCenter whose controllers accept the test operators' tokens."""
    return CallCenter(tmp_path, emulator, {**env, "CALLCENTER_OPERATOR_TOKENS": tokens})


class Api:
    """The operator API of one server, as ``token`` sees it."""

    def __init__(self, url: str, token: str | None = ADA) -> None:
        self.url = url + "/api/v1"
        self.token = token

    def headers(self, token: str | None = None) -> dict[str, str]:
        """The Authorization header for ``token`` (default: this client's)."""
        token = token or self.token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: Any) -> httpx.Response:
        """GET ``path`` under /api/v1."""
        return httpx.get(self.url + path, params=params, headers=self.headers(), timeout=10)

    def post(self, path: str, body: object = None) -> httpx.Response:
        """POST ``body`` as JSON to ``path`` under /api/v1."""
        return httpx.post(self.url + path, json=body, headers=self.headers(), timeout=10)


def live_call(emulator: EmulatorThread, api: Api, script: list[Step] | None = None) -> EmulatedCall:
    """A call to the support line, on hold, active in the store with its sideband attached."""
    call = emulator.place_call(to_number=SUPPORT, script=script or [*GREETED, HOLD])
    wait_for(lambda: call.attaches == 1, what="the sideband")

    def active() -> bool:
        response = api.get(f"/calls/{call.call_id}")
        return response.status_code == 200 and response.json()["status"] == "active"

    wait_for(active, what="the call to be active")
    return call


def error_code(response: httpx.Response) -> str:
    """The ``error.code`` of a JSON error reply."""
    code: str = response.json()["error"]["code"]
    return code


def csrf_of(page: str) -> str:
    """The CSRF token a rendered page carries."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def logged_in(controller: InProcessController, token: str = ADA) -> httpx.Client:
    """An HTTP client with a console session."""
    client = httpx.Client(base_url=controller.url, timeout=10)
    csrf = csrf_of(client.get("/console/login").text)
    response = client.post("/console/login", data={"token": token, "csrf": csrf})
    assert response.status_code == 302, response.text
    return client
