"""axe-core in the browser tests: the accessibility rules WCAG 2.1 AA checks are made of.

axe-core comes from npm (package.json devDependencies, `npm ci`); it is injected into the page
under test through the DevTools protocol (`page.evaluate`), which the page's Content-Security-
Policy does not govern, so the app's CSP stays as strict as in production.
"""

from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_SOURCE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# What the journey tests fail on; "moderate" and "minor" findings are reported, not fatal.
BLOCKING_IMPACTS = ("serious", "critical")


@cache
def _axe_source() -> str:
    if not AXE_SOURCE.exists():
        raise FileNotFoundError(f"{AXE_SOURCE} is missing: run `npm ci` (bin/test does)")
    return AXE_SOURCE.read_text(encoding="utf-8")


def axe_violations(page: Page, *, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> list[str]:
    """The page's axe-core violations of these impacts, one readable line per failing node."""
    if not page.evaluate("() => typeof window.axe === 'object'"):  # once per document
        page.evaluate(_axe_source())
    result: dict[str, Any] = page.evaluate(
        """async () => await window.axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                            "best-practice"]},
            resultTypes: ["violations"],
        })"""
    )
    lines = []
    for violation in result["violations"]:
        if violation["impact"] not in impacts:
            continue
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            summary = node.get("failureSummary", "").replace("\n", " ")
            lines.append(f"{violation['impact']} {violation['id']} at {target}: {summary}")
    return lines
