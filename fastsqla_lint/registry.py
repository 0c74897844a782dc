"""All rules, found by importing every module of `fastsqla_lint.rules`; selection by code or prefix."""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import Iterable

from fastsqla_lint.config import Config, ConfigError
from fastsqla_lint.rule import Rule


@lru_cache(maxsize=1)
def all_rules() -> tuple[type[Rule], ...]:
    import fastsqla_lint.rules as pkg

    found: dict[str, type[Rule]] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for obj in vars(mod).values():
            if (
                isinstance(obj, type)
                and issubclass(type(obj), type)  # not a generic alias (`tuple[str, ...]` passes the above on 3.10)
                and issubclass(obj, Rule)
                and obj is not Rule
                and obj.code
                and obj.__module__ == mod.__name__
            ):
                if obj.code in found and found[obj.code] is not obj:
                    raise RuntimeError(f"duplicate rule code {obj.code}")
                found[obj.code] = obj
    return tuple(sorted(found.values(), key=lambda r: r.code))


def by_code() -> dict[str, type[Rule]]:
    return {r.code: r for r in all_rules()}


def get(code: str) -> type[Rule] | None:
    return by_code().get(code.upper())


def _matches(code: str, selector: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def check_selectors(selectors: Iterable[str], origin: str = "") -> None:
    """Raise ConfigError naming the first selector that matches no rule."""
    codes = [r.code for r in all_rules()]
    for sel in selectors:
        s = sel.strip().upper()
        if not s or not any(_matches(c, s) for c in codes):
            where = f" in {origin}" if origin else ""
            raise ConfigError(f"unknown rule selector {sel!r}{where} (see `fastsqla-lint rules`)")


def selected_codes(config: Config) -> frozenset[str]:
    rules = all_rules()
    if config.select is None:
        chosen = {r.code for r in rules if r.default_enabled}
    else:
        chosen = {r.code for r in rules if any(_matches(r.code, s.upper()) for s in config.select)}
    chosen |= {r.code for r in rules if any(_matches(r.code, s.upper()) for s in config.extend_select)}
    # ignore beats select unless the selector named in select is more specific (ruff's precedence)
    result = set()
    for code in chosen:
        ign = [s for s in config.ignore if _matches(code, s.upper())]
        if not ign:
            result.add(code)
            continue
        sel = [s for s in (config.select or ()) + config.extend_select if _matches(code, s.upper())]
        if sel and max(len(s) for s in sel) > max(len(s) for s in ign):
            result.add(code)
    return frozenset(result)


def selected_rules(config: Config) -> tuple[type[Rule], ...]:
    codes = selected_codes(config)
    return tuple(r for r in all_rules() if r.code in codes)
