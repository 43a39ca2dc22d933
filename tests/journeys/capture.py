"""Capture a page of a journey the way a marketer may meet it: light and dark, on a laptop
(1280x800) and a phone (390x844), a full-page PNG each, with axe-core run on every capture.

The theme follows the system's colour scheme when nobody picked one (tokens.css, app.js), so
the capture switches it with `emulate_media` on the same page: no reload, no new context, and
whatever the page holds (a filled builder, a generated insight) stays as the user left it.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Page, Response, ViewportSize

from tests.web.axe import axe_violations

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "journeys"
LAPTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
# Light first and last: the journey carries on at the laptop size in the light theme.
VARIANTS = [(LAPTOP, "light"), (LAPTOP, "dark"), (PHONE, "dark"), (PHONE, "light")]


@dataclass
class Journey:
    """Every page captured so far and what was wrong with it, for one failure at the end that
    lists every page's problems rather than the first one only; also any uncaught script error
    and any server error (5xx) met on the way, captured or not."""

    pages: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    problems: dict[str, list[str]] = field(default_factory=dict)

    def watch(self, page: Page) -> None:
        def server_error(response: Response) -> None:
            if response.status >= 500:
                self.errors.append(f"{response.status} from {response.url}")

        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.on("response", server_error)

    def capture(self, page: Page, step: str) -> None:
        """Four full-page screenshots of the page as it is now; axe-core on each (serious or
        critical violations are problems) and, at 390 px, no sideways scrolling."""
        assert step not in self.pages, f"{step} captured twice"
        self.pages.append(step)
        started = time.monotonic()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        found: list[str] = []
        for viewport, theme in VARIANTS:
            page.set_viewport_size(viewport)
            page.emulate_media(color_scheme=theme)  # type: ignore[arg-type]
            # From the top: a full-page capture of a scrolled page draws the sticky top bar and
            # side bar where the viewport was, over the content.
            page.evaluate("window.scrollTo(0, 0)")
            width = viewport["width"]
            name = f"{step}_{width}_{theme}"
            # Transitions (the theme's colours) are finished, not caught halfway.
            page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True, animations="disabled")
            found += [f"{width} {theme}: {line}" for line in axe_violations(page)]
            if width == PHONE["width"]:
                scroll_width = int(page.evaluate("document.documentElement.scrollWidth"))
                if scroll_width > width:
                    found.append(f"{width} {theme}: the page is {scroll_width} px wide")
        page.set_viewport_size(LAPTOP)
        page.emulate_media(color_scheme="light")
        self.seconds[step] = round(time.monotonic() - started, 1)
        if found:
            self.problems[step] = found
        (ARTIFACTS / "problems.json").write_text(json.dumps(self.problems, indent=1))
        (ARTIFACTS / "seconds.json").write_text(json.dumps(self.seconds, indent=1))

    def assert_clean(self) -> None:
        assert not self.errors, "Errors on the journey:\n" + "\n".join(self.errors)
        assert not self.problems, "Serious or critical problems on the journey's pages:\n" + (
            json.dumps(self.problems, indent=1, ensure_ascii=False)
        )
