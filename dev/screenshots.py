"""`make screenshots`: pictures of the pages, taken from a real stack in a real browser.

    python -m dev.screenshots            # docs/img/reviews.png, run.png, chat.png, control.png, trace.png

It starts the stack of `make run-traced` on free ports (as the tests do, dev/harness.py), creates
what the pages show — pending reviews of the three approval agents, a streaming run, a chat of
two messages, a WeatherAgent run — and screenshots each page with the same browser code as the
tests (dev/browser.py); control.png is the WeatherAgent run's page, trace.png its trace in Phoenix,
opened from that page.
"""

import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from dev.browser import HOW_TO_GET_ONE, chromium, chromium_path
from dev.harness import Tour, TracedTour, wait_until

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "img"
CLAIM = "Process my hospital bill of 3000USD for a broken leg."


def pending_reviews(tour: Tour) -> list[dict[str, object]]:
    reviews: list[dict[str, object]] = httpx.get(f"{tour.web_url}/api/reviews", timeout=10).json()["reviews"]
    return reviews


def prepare(tour: Tour) -> tuple[str, str]:
    """Pending reviews, a finished streaming run, a chat; returns (run id, chat key)."""
    tour.send("HumanClaimApprovalAgent/run", {"message": CLAIM})
    tour.send(
        "HumanClaimApprovalWithTimeoutsAgent/run",
        {"message": "Process my car repair of 4200USD for a dented bumper at the garage."},
    )
    tour.send(
        "HumanApprovalWorkflow/requestApproval",
        {
            "date": "2024-10-01",
            "amount": 1800,
            "category": "dental",
            "placeOfService": "Dentist",
            "reason": "root canal treatment",
        },
    )
    wait_until(lambda: len(pending_reviews(tour)) == 3, timeout=60, what="three pending reviews")

    run_id = tour.send("StreamingAgent/run", {"message": "What is the weather like in Tokyo?"})
    assert tour.output(run_id).status_code == 200
    key = "alice"
    for message in ("My name is Alice.", "What is my name?"):
        assert tour.call(f"Chat/{key}/message", {"message": message}).status_code == 200
    return run_id, key


def shoot(page: Page, url: str, ready: str, path: Path) -> None:
    page.goto(url)
    expect(page.locator(ready)).to_be_visible(timeout=30_000)
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path.relative_to(REPO)}")


def main() -> None:
    if chromium_path() is None:
        sys.exit(f"error: {HOW_TO_GET_ONE}")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as workdir:
        tour = TracedTour(Path(workdir))
        try:
            tour.start()
            run_id, key = prepare(tour)
            weather = tour.call("WeatherAgent/run", {"message": "What is the weather like in San Francisco?"})
            weather_run = weather.headers["x-restate-id"]
            wait_until(lambda: tour.trace_of(weather_run), timeout=30, what="the run's trace in Phoenix")
            time.sleep(2)  # the rest of its spans
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 900, "height": 600}, timezone_id="UTC")
                shoot(page, f"{tour.web_url}/reviews", "li.review >> nth=2", OUT / "reviews.png")
                shoot(page, f"{tour.web_url}/runs/{run_id}", "#events li.done", OUT / "run.png")
                shoot(page, f"{tour.web_url}/chat/{key}", "#messages li >> nth=3", OUT / "chat.png")
                shoot(page, f"{tour.web_url}/runs/{weather_run}", "#journal tr >> nth=3", OUT / "control.png")
                trace_page = browser.new_page(viewport={"width": 1400, "height": 900}, timezone_id="UTC")
                trace_page.goto(f"{tour.web_url}/runs/{weather_run}")
                trace_page.locator("#trace-link").click(timeout=30_000)
                expect(trace_page.get_by_text("Get weather").first).to_be_visible(timeout=60_000)
                trace_page.get_by_text("Get weather").first.click()  # the step: its input and result
                trace_page.wait_for_timeout(1000)
                trace_page.screenshot(path=str(OUT / "trace.png"))
                print(f"wrote {(OUT / 'trace.png').relative_to(REPO)}")
        finally:
            tour.stop()


if __name__ == "__main__":
    main()
