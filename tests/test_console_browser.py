"""The console end to end in headless Chromium: log in, watch a call live, transfer it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from callcenter.emulator import CallState, EmulatorThread, Say, WaitFor
from tests.harness import InProcessController, wait_for
from tests.operator_support import ADA, GREETED, HOLD, VERA, Api, live_call, operator_center
from tests.sideband_support import SUPPORT

if TYPE_CHECKING:
    from playwright.sync_api import Page

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
TIMEOUT_MS = 10_000
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[InProcessController]:
    """A controller with the test operators' tokens."""
    center = operator_center(tmp_path, emulator, controller_env)
    yield center.start()
    center.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    """A page in Debian's headless Chromium."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened = browser.new_page()
        opened.set_default_timeout(TIMEOUT_MS)
        yield opened
        browser.close()


def test_an_operator_watches_a_call_and_transfers_it(
    page: Page,
    controller: InProcessController,
    emulator: EmulatorThread,
    tmp_path: Path,
) -> None:
    """Log in, see the call appear, its transcript grow, press transfer: the REFER goes out."""
    expect = playwright_api.expect
    page.goto(controller.url + "/console/login")
    page.fill("input[name=token]", ADA)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Live calls")

    script = [*GREETED, WaitFor("conversation.item.create"), Say("Where is my parcel?"), HOLD]
    call = emulator.place_call(to_number=SUPPORT, script=script)
    row = page.locator(f"tr[data-call-id='{call.call_id}']")
    expect(row).to_be_visible()  # appeared without a reload, through the live stream
    expect(row).to_contain_text("Hello, Acme support.")

    row.locator("a").click()
    transcript = page.locator("#transcript li")
    expect(transcript).to_have_count(1)
    instructed = Api(controller.url).post(f"/calls/{call.call_id}/instruct", {"text": "Hurry."})
    assert instructed.status_code == 200
    expect(page.locator("#transcript")).to_contain_text("Where is my parcel?")  # grew live

    page.select_option("#transfer-target", "sales")
    page.click("#transfer")
    wait_for(lambda: call.state is CallState.REFERRED, what="the REFER")
    assert call.refer_target == "tel:+14155550199"
    expect(page.locator(".flash")).to_contain_text("transfer")
    expect(page.locator("#call-status")).to_have_text("referred")
    expect(page.locator("#escalations li", has_text="escalation:")).to_have_count(1)
    page.screenshot(path=str(tmp_path / "console-call.png"), full_page=True)
    assert (tmp_path / "console-call.png").stat().st_size > 0


def test_the_live_page_opens_its_stream_again_after_a_503(
    page: Page,
    tmp_path: Path,
    emulator: EmulatorThread,
    controller_env: dict[str, str],
) -> None:
    """With the worker's one stream slot taken, the live page's stream is refused; it retries."""
    center = operator_center(tmp_path, emulator, {**controller_env, "CALLCENTER_MAX_STREAMS": "1"})
    try:
        controller = center.start()
        api = Api(controller.url)
        holder = live_call(emulator, api)
        url = f"{api.url}/calls/{holder.call_id}/stream"
        with httpx.stream("GET", url, headers=api.headers(), timeout=30) as taken:
            lines = taken.iter_lines()
            next(lines)  # the slot is held
            page.goto(controller.url + "/console/login")
            page.fill("input[name=token]", ADA)
            with page.expect_response(lambda r: r.url.endswith("/console/live")) as refused:
                page.click("button[type=submit]")
            assert refused.value.status == 503
            api.post(f"/calls/{holder.call_id}/hangup")
            assert any(line == "event: end" for line in lines)  # the slot is free again
        call = emulator.place_call(to_number=SUPPORT, script=[*GREETED, HOLD])
        row = page.locator(f"tr[data-call-id='{call.call_id}']")
        # The console retries a refused stream after 5 s: wait well past that, as on a busy CI.
        playwright_api.expect(row).to_be_visible(timeout=30_000)  # the stream was opened again
    finally:
        center.stop()


@pytest.mark.parametrize("width", [390, 1280])
def test_an_admin_filters_the_audit_trail(
    page: Page, controller: InProcessController, emulator: EmulatorThread, width: int
) -> None:
    """The audit page at a phone's and a desktop's width: refusals filtered, nothing wider than
    the screen, untrusted text escaped, no console error; a viewer has no Audit link."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_viewport_size({"width": width, "height": 800})
    call = live_call(emulator, Api(controller.url))
    Api(controller.url).post(f"/calls/{call.call_id}/instruct", {"text": XSS})
    Api(controller.url, VERA).post(f"/calls/{call.call_id}/hangup")
    expect = playwright_api.expect
    page.goto(controller.url + "/console/login")
    page.fill("input[name=token]", VERA)
    page.click("button[type=submit]")
    expect(page.locator("#role")).to_have_text("viewer")
    expect(page.locator("#nav-audit")).to_have_count(0)
    page.goto(controller.url + f"/console/calls/{call.call_id}")
    expect(page.locator("#hangup")).to_have_count(0)
    page.click("header button[type=submit]")  # log out
    page.fill("input[name=token]", ADA)
    page.click("button[type=submit]")
    page.click("#nav-audit")
    expect(page.locator("h1")).to_have_text("Audit trail")
    expect(page.locator("#audit tbody tr", has_text="instruct")).to_have_count(1)
    expect(page.locator("#audit")).to_contain_text(XSS)  # shown as text, not run
    assert page.locator("#audit img").count() == 0
    page.select_option("select[name=result]", "refused")
    page.click("#audit-filter button[type=submit]")
    rows = page.locator("#audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("vera")
    expect(rows.first).to_contain_text("refused:403:forbidden")
    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the {width}px screen"
    assert errors == []
