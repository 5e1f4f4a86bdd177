"""The OpenAPI document against the real server (schemathesis): no 5xx, answers match it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import CheckFunction
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
)

from callcenter.emulator import EmulatorThread
from callcenter.operators.openapi import openapi_document
from callcenter.operators.services import OPERATORS
from tests.harness import InProcessController
from tests.operator_support import ADA, operator_center

schema = schemathesis.openapi.from_dict(openapi_document())
# What is checked: no 5xx, every status, content type, header and body as documented, auth
# enforced, 405s with Allow. Not checked: that every schema-valid input is accepted (cursors
# are opaque; a leap second is RFC 3339 but no datetime) or every invalid one refused
# (unknown query parameters are ignored, as HTTP APIs do).
EXCLUDED: list[CheckFunction] = [positive_data_acceptance, negative_data_rejection]
FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


INTERNALS = ("invalid literal", "Traceback", "Error:", "psycopg", "sqlite", "line ")


def no_internals_in_errors(ctx: object, response: Response, case: Case[Any]) -> bool | None:
    """A 4xx is the JSON error with a fixed message: no Python or driver text in it."""
    content_type = response.headers.get("content-type", [""])[0]
    if 400 <= response.status_code < 500 and content_type == "application/json":
        message = response.json()["error"]["message"]
        leaked = [word for word in INTERNALS if word in message]
        if leaked:
            raise AssertionError(f"the error message shows internals {leaked}: {message!r}")
    return None


@pytest.fixture
def controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[InProcessController]:
    """A controller with the test operators' tokens, and room for every failed login."""
    center = operator_center(tmp_path, emulator, controller_env)
    started = center.start()
    started.app.extensions[OPERATORS].limiter.max_failures = 1_000_000
    yield started
    center.stop()


def test_the_document_is_served_without_a_token(controller: InProcessController) -> None:
    """GET /api/v1/openapi.json needs no token and is the module's document."""
    response = httpx.get(controller.url + "/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == openapi_document()


@schema.parametrize()
@FUZZ
def test_the_api_matches_its_document_with_a_token(
    case: Case[Any], controller: InProcessController
) -> None:
    """With a valid token: no 5xx, every answer documented and in its schema."""
    case.call_and_validate(
        base_url=controller.url + "/api/v1",
        headers={"Authorization": f"Bearer {ADA}"},
        excluded_checks=EXCLUDED,
        additional_checks=[no_internals_in_errors],
    )


@schema.parametrize()
@FUZZ
def test_the_api_matches_its_document_without_a_token(
    case: Case[Any], controller: InProcessController
) -> None:
    """Without a token: no 5xx, only documented refusals."""
    case.call_and_validate(
        base_url=controller.url + "/api/v1",
        excluded_checks=EXCLUDED,
        additional_checks=[no_internals_in_errors],
    )
