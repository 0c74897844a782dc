"""ANSI colour codes, and a painter that is a no-op when colour is off."""

from __future__ import annotations

from typing import Callable

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
RED = "\x1b[31m"
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
BLUE = "\x1b[34m"
CYAN = "\x1b[36m"


def painter(enabled: bool) -> Callable[..., str]:
    """`paint(text, *styles)`: the text wrapped in the styles, or as it is when colour is off."""

    def paint(text: str, *styles: str) -> str:
        if not enabled or not styles or not text:
            return text
        return "".join(styles) + text + RESET

    return paint
