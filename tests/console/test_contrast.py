"""The console stylesheet's colours meet WCAG contrast: every text colour against every
background of the opposite lightness it declares (text 4.5:1, WCAG 1.4.3 AA), and the focus
outline against the page (3:1, WCAG 1.4.11). Computed from worker/console/static/console.css
itself, custom properties resolved, so a colour changed there is checked here."""

from __future__ import annotations

import re
from itertools import product

import pytest

from tests.conftest import REPO

CSS = (REPO / "worker" / "console" / "static" / "console.css").read_text()
PAGE = "#ffffff"  # body { background: #fff }


def _rules(css: str) -> list[tuple[str, dict[str, str]]]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    found = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        declarations = {}
        for part in body.split(";"):
            if ":" in part:
                name, value = part.split(":", 1)
                declarations[name.strip()] = value.strip()
        found.append((selector.strip(), declarations))
    return found


RULES = _rules(CSS)
VARIABLES = {k: v for selector, d in RULES if selector == ":root" for k, v in d.items()}


def _hex(value: str) -> str | None:
    """A declaration's colour as #rrggbb, custom properties resolved; None if it has none."""
    value = re.sub(r"var\((--[\w-]+)\)", lambda m: VARIABLES[m.group(1)], value)
    found = re.search(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", value)
    if found is None:
        return None
    digits = found.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return "#" + digits.lower()


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of #rrggbb."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _declared(names: tuple[str, ...]) -> set[str]:
    colours = {_hex(d[n]) for _, d in RULES for n in names if n in d}
    return {c for c in colours if c is not None}


TEXT = _declared(("color",))
BACKGROUNDS = _declared(("background", "background-color")) | {PAGE}


def test_the_formula_matches_known_ratios() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the AA grey
    assert contrast("#777777", "#ffffff") < 4.5


def test_the_stylesheet_declares_the_colours_it_uses() -> None:
    assert {"#1a1a1a", "#4a4a4a", "#0b5cad", "#ffffff"} <= TEXT, "parsed the text colours"
    assert {"#f4f6f8", "#0b5cad", "#fff4e5"} <= BACKGROUNDS, "parsed the backgrounds"


def test_every_text_colour_reads_on_every_background_it_may_sit_on() -> None:
    # Dark text sits on the light backgrounds, light text (button labels) on the dark ones.
    failing = [
        f"{text} on {ground}: {contrast(text, ground):.2f}:1"
        for text, ground in product(sorted(TEXT), sorted(BACKGROUNDS))
        if (luminance(text) < 0.18) == (luminance(ground) > 0.18) and contrast(text, ground) < 4.5
    ]
    assert failing == []
    assert all(
        any((luminance(t) < 0.18) == (luminance(g) > 0.18) for g in BACKGROUNDS) for t in TEXT
    ), "every text colour was checked against some background"


def test_the_focus_outline_stands_out_from_the_page() -> None:
    outlines = {_hex(d["outline"]) for s, d in RULES if ":focus" in s and "outline" in d}
    assert outlines and None not in outlines
    for colour in outlines:
        assert colour is not None
        assert contrast(colour, PAGE) >= 3.0, f"focus outline {colour} on white"
