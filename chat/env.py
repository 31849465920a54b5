"""Reading typed values out of an environment mapping, each refused with a message naming it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chat.errors import ChatError, ErrorKind

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}

Env = Mapping[str, str]


def text(env: Env, name: str, default: str = "") -> str:
    """A setting's text, trimmed; the default when unset or blank."""
    return env.get(name, "").strip() or default


def optional(env: Env, name: str) -> str | None:
    """A setting's text, trimmed; None when unset or blank."""
    return env.get(name, "").strip() or None


def flag(env: Env, name: str, *, default: bool) -> bool:
    """A yes/no setting: 1/0, true/false, yes/no, on/off."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in TRUE_WORDS | FALSE_WORDS:
        raise config_error(name, raw, "must be 1 or 0 (on or off)")
    return raw in TRUE_WORDS


def choice(env: Env, name: str, choices: Sequence[str], default: str) -> str:
    """One of a fixed set of words (case does not matter)."""
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise config_error(name, raw, f"must be one of {', '.join(choices)}")
    return raw


def domains(env: Env, name: str) -> tuple[str, ...]:
    """A comma-separated list of domains (example.com, docs.example.com), without a scheme."""
    raw = env.get(name, "").strip()
    names = tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    if any("://" in part or " " in part for part in names):
        raise config_error(name, raw, "must list domains separated by commas, without http:// or https://")
    return names


def positive_int(env: Env, name: str, default: int) -> int:
    """A whole number above 0."""
    return _count(env, name, default, minimum=1)


def whole_number(env: Env, name: str, default: int) -> int:
    """A whole number, 0 or more (0 usually turns a limit off)."""
    return _count(env, name, default, minimum=0)


def positive_seconds(env: Env, name: str, default: float) -> float:
    """A number of seconds above 0."""
    return _seconds(env, name, default, above_zero=True)


def seconds(env: Env, name: str, default: float) -> float:
    """A number of seconds, 0 or more."""
    return _seconds(env, name, default, above_zero=False)


def config_error(name: str, raw: str, rule: str) -> ChatError:
    """The error for a setting that breaks its rule."""
    return ChatError(ErrorKind.CONFIG, f"{name} {rule}, not {raw!r}.", setting=name)


def _count(env: Env, name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        rule = "above 0" if minimum else "(0 or more; 0 turns it off)"
        raise config_error(name, raw, f"must be a whole number {rule}")
    return int(raw)


def _seconds(env: Env, name: str, default: float, *, above_zero: bool) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")  # fails both checks below
    if not (0 < value < float("inf") if above_zero else value >= 0):
        rule = "above 0" if above_zero else "(0 or more)"
        raise config_error(name, raw, f"must be a number of seconds {rule}")
    return value
