"""Accessibility checks of a page in the browser: axe-core's WCAG 2.1 A/AA rules, plus what axe
does not check: a label for every form control, exactly one h1, and the keyboard reaching the
page's main actions.

axe-core comes vendored in the ``axe-playwright-python`` package (a dev dependency: axe-core is
not on PyPI by itself, and nothing is downloaded from npm); its JavaScript is injected into the
page through Playwright's evaluate, which the console's Content-Security-Policy (no inline
script) does not govern. Only that file is used, not the package's untyped wrapper.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

# WCAG 2.0/2.1 levels A and AA: labels, alt texts, lang, names, contrast, structure...
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Named here so that a rule renamed or dropped by a new axe fails loudly, not silently.
REQUIRED_RULES = ("label", "image-alt", "html-has-lang", "html-lang-valid", "button-name",
                  "select-name", "color-contrast", "document-title")  # fmt: skip
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const r = e.getBoundingClientRect();
  const name = (e.getAttribute('aria-label') || e.innerText || e.value || e.id || '').trim();
  return {tag: e.tagName.toLowerCase(), name: name, visible: r.width > 0 && r.height > 0};
}"""


@cache
def axe_script() -> str:
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any, waived: tuple[str, ...] = ()) -> list[str]:
    """axe-core's WCAG A/AA violations on the page, one line each (rule, impact, where);
    ``waived``: rules not run here (the caller checks what they stand for another way)."""
    page.evaluate(axe_script())
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"],
               "rules": {rule: {"enabled": False} for rule in waived}}  # fmt: skip
    results: dict[str, Any] = page.evaluate("options => axe.run(document, options)", options)
    ran = {rule["id"] for key in ("violations", "passes", "incomplete", "inapplicable")
           for rule in results.get(key, [])}  # fmt: skip
    missing = [rule for rule in REQUIRED_RULES if rule not in ran and rule not in waived]
    assert not missing, f"axe no longer runs {missing}"
    return [
        f"{v['id']} ({v['impact']}): {', '.join(str(n['target']) for n in v['nodes'][:3])}"
        for v in results["violations"]
    ]


UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]):not([type=submit]):not([type=button]), select, textarea'))
  .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')
               && !e.getAttribute('aria-labelledby'))
  .map(e => e.outerHTML.slice(0, 80))"""


def unlabelled_controls(page: Any) -> list[str]:
    """Form controls without a label of their own: stricter than axe, which also takes a
    placeholder or a title for one (both vanish or hide as the reader types)."""
    return list(page.evaluate(UNLABELLED))


def h1_count(page: Any) -> int:
    return int(page.locator("h1").count())


def tab_walk(page: Any, limit: int = 200) -> list[dict[str, Any]]:
    """The elements the Tab key focuses, in order, from the top of the page once round."""
    # Start before the first element (an autofocus field would otherwise be the start): a
    # focus target that Tab itself never stops at (tabindex -1), first in the body.
    page.evaluate("""() => {
      const start = document.createElement('span');
      start.tabIndex = -1;
      document.body.prepend(start);
      start.focus();
    }""")
    focused: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        found = page.evaluate(FOCUSED)
        if found is None or (focused and found == focused[0]):
            break  # back to the browser's chrome, or round again
        focused.append(found)
    return focused
