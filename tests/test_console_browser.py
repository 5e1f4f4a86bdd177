"""The console end to end in headless Chromium: every page at a phone's and a desk's width,
watching a call live and transferring it, and a refused stream opened again.

One browser serves the module; a test reuses one page across widths. With
``CALLCENTER_SCREENSHOTS=DIR`` the dashboard and a call page are saved there (the README's
pictures come from ``CALLCENTER_SCREENSHOTS=docs/img``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from callcenter.call.vocabulary import CallOutcome, EventKind
from callcenter.emulator import CallState, EmulatorThread, Say, WaitFor
from callcenter.store import Store
from tests.harness import InProcessController, wait_for
from tests.operator_support import ADA, GREETED, HOLD, VERA, Api, live_call, operator_center
from tests.sideband_support import SUPPORT
from tests.test_store import claim, new_call

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Page

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
TIMEOUT_MS = 10_000
PHONE, DESK = 390, 1280
EVIL = "<img src=x onerror=alert(1)>"
SCREENSHOTS = os.environ.get("CALLCENTER_SCREENSHOTS")
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def controller(
    tmp_path: Path, emulator: EmulatorThread, controller_env: dict[str, str]
) -> Iterator[InProcessController]:
    """A controller with the test operators' tokens.

    A browser hopping through a dozen pages in a few seconds leaves each page's stream open
    until the server's next write to it finds the page gone; the cap is raised so that those
    do not fill it (the cap itself is tested on its own, below).
    """
    env = {**controller_env, "CALLCENTER_MAX_STREAMS": "32"}
    center = operator_center(tmp_path, emulator, env)
    yield center.start()
    center.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, once for the module."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with playwright_api.sync_playwright() as playwright:
        opened = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield opened
        opened.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page with its own cookies."""
    context = browser.new_context(viewport={"width": DESK, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    context.close()


@pytest.fixture
def problems(page: Page) -> list[str]:
    """The console errors, uncaught exceptions and dialogs (an alert()) of ``page``."""
    seen: list[str] = []

    def dialog(opened: Dialog) -> None:
        seen.append("dialog: " + opened.message)
        opened.dismiss()

    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: seen.append(str(error)))
    page.on("dialog", dialog)
    return seen


def log_in(page: Page, controller: InProcessController) -> None:
    """Log the page in as Ada; it lands on the dashboard."""
    page.goto(controller.url + "/console/login")
    page.fill("input[name=token]", ADA)
    page.click("button[type=submit]")
    playwright_api.expect(page.locator("h1")).to_have_text("Dashboard")


def earlier_calls(store: Store) -> None:
    """A morning of finished calls, for the dashboard to count."""
    now = datetime.now(UTC)
    start = max(now.replace(hour=0, minute=0, second=0, microsecond=0), now - timedelta(hours=6))
    outcomes = [CallOutcome.COMPLETED] * 5 + [CallOutcome.TRANSFERRED, CallOutcome.ENDED_BY_AGENT]
    for n, outcome in enumerate(outcomes * 2):
        at = start + (now - start) * n / (len(outcomes) * 2 + 1)
        call_id = f"rtc_earlier{n:02d}"
        claim(store, new_call(call_id, f"wh_earlier{n}", received_at=at), now=at)
        store.mark_answered(call_id, at=at)
        if outcome is CallOutcome.TRANSFERRED:
            store.record_handoff(call_id, ticket=f"T-{n}", trigger="human", summary=None, at=at)
        store.record_usage(call_id, {"input_tokens": 2400 + 90 * n, "output_tokens": 600}, at=at)
        store.record_outcome(call_id, outcome=outcome, at=at + timedelta(seconds=95 + 7 * n))


def no_overflow(page: Page) -> bool:
    """Whether the page is no wider than its window (no sideways scrolling of the page)."""
    width: bool = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    return width


def test_every_page_at_a_phones_and_a_desks_width_keeps_untrusted_text_inert(
    page: Page, problems: list[str], controller: InProcessController, emulator: EmulatorThread
) -> None:
    """Each page at 390 and 1280 px: no console error, no overflow, hostile text only text."""
    script = [*GREETED, Say(EVIL), HOLD]
    call = emulator.place_call(
        to_number=SUPPORT, caller_name=EVIL,
        headers=[("X-Evil", EVIL)], script=script,
    )  # fmt: skip
    store = controller.services.store
    wait_for(lambda: any(e.data.get("text") == EVIL for e in store.transcript(call.call_id)))
    tool = {"name": EVIL, "arguments": json.dumps({"q": EVIL}), "output": EVIL, "ok": False,
            "error": EVIL, "duration_ms": 1.0}  # fmt: skip
    store.add_event(call.call_id, EventKind.TOOL, tool, datetime.now(UTC))
    log_in(page, controller)
    paths = ["/console", "/console/history", "/console/history?text=img+onerror",
             f"/console/calls/{call.call_id}", "/console/history?outcome=nope"]  # fmt: skip
    for width in (PHONE, DESK):
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            page.goto(controller.url + path)
            page.wait_for_load_state("domcontentloaded")
            assert page.locator("img").count() == 0, path
            assert no_overflow(page), (width, path)
        page.goto(controller.url + "/console/calls/" + call.call_id)
        for details in page.locator("#timeline details").all():
            details.click()  # open: the arguments and the result, still text
        assert page.locator("#timeline pre", has_text=EVIL).count() >= 2
        assert no_overflow(page), (width, "opened tool call")
    assert [p for p in problems if "400 (BAD REQUEST)" not in p] == []  # the bad outcome
    page.context.clear_cookies()
    page.goto(controller.url + "/console/login")
    assert page.locator("input[name=token]").is_visible()


def test_an_operator_watches_a_call_and_transfers_it(
    page: Page,
    problems: list[str],
    controller: InProcessController,
    emulator: EmulatorThread,
    tmp_path: Path,
) -> None:
    """The dashboard shows the call live, its timeline grows, transfer sends the REFER."""
    expect = playwright_api.expect
    earlier_calls(controller.services.store)
    log_in(page, controller)
    expect(page.locator("#stat-calls")).to_have_text("14")
    expect(page.locator("#stat-latency")).to_have_text("not measured")

    script = [*GREETED, WaitFor("conversation.item.create"), Say("Where is my parcel?"), HOLD]
    call = emulator.place_call(to_number=SUPPORT, caller_name="Grace Hopper", script=script)
    row = page.locator(f"tr[data-call-id='{call.call_id}']")
    expect(row).to_be_visible()  # appeared without a reload, through the live stream
    expect(row).to_contain_text("Hello, Acme support.")
    expect(page.locator("#stat-live")).to_have_text("1")  # the figures follow too
    expect(page.locator("#stat-calls")).to_have_text("15")
    shoot(page, tmp_path, "console-dashboard.png")

    row.locator("a").click()
    expect(page.locator("#timeline .entry-line")).to_have_count(1)
    instructed = Api(controller.url).post(f"/calls/{call.call_id}/instruct", {"text": "Hurry."})
    assert instructed.status_code == 200
    expect(page.locator("#timeline")).to_contain_text("Where is my parcel?")  # grew live
    expect(page.locator("#timeline .entry-operator")).to_contain_text("Hurry.")
    tool = {"name": "track_parcel", "arguments": json.dumps({"order_id": "A-1042"}),
            "output": {"status": "in transit", "eta": "Thursday"}, "ok": True, "error": None,
            "duration_ms": 84.2}  # fmt: skip
    controller.services.store.add_event(call.call_id, EventKind.TOOL, tool, datetime.now(UTC))
    expect(page.locator("#timeline .entry-tool")).to_contain_text("track_parcel")

    page.select_option("#transfer-target", "sales")
    page.click("#transfer")
    wait_for(lambda: call.state is CallState.REFERRED, what="the REFER")
    assert call.refer_target == "tel:+14155550199"
    expect(page.locator(".flash")).to_contain_text("transfer")
    expect(page.locator("#call-status")).to_have_text("referred")
    expect(page.locator("#timeline .entry-escalation")).to_contain_text("Escalation")
    expect(page.locator("#timeline .entry-transfer")).to_contain_text("Transferred")
    expect(page.locator("#outcome")).to_have_text("Escalated and handed to a human")
    page.locator("#timeline .entry-tool details").first.click()
    shoot(page, tmp_path, "console-call.png")
    assert problems == []


def shoot(page: Page, tmp_path: Path, name: str) -> None:
    """A full-page screenshot, kept in CALLCENTER_SCREENSHOTS when it names a directory."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / name)


def test_the_live_page_opens_its_stream_again_after_a_503(
    page: Page,
    tmp_path: Path,
    emulator: EmulatorThread,
    controller_env: dict[str, str],
) -> None:
    """With the worker's one stream slot taken, the dashboard's stream is refused; it retries."""
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
