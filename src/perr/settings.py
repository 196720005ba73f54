"""One source of defaults and bounds per config dataclass, from which the CLI options are made.

PySceneDetect idiom: a field is declared once with its default, bounds and help
(``threshold: float = setting(0.5, "…", min=0, max=1)``); the dataclass checks the bounds in
``__post_init__`` (:func:`check_settings`) and :func:`config_options` turns the fields into the
command's ``--options``, so the CLI and the Python API can never disagree on a default or a bound.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import typing
from collections.abc import Callable, Sequence
from typing import Any

import typer

Choices = Sequence[str] | Callable[[], Sequence[str]]


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: Choices | None = None,
    cli: bool = True,
    flags: Sequence[str] = (),
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field carrying its help, bounds and choices. `min`/`max` are inclusive bounds,
    `above`/`below` exclusive ones. ``cli=False`` keeps it out of the CLI; `flags` replaces the option
    names derived from the field name (``--field-name``)."""
    meta = {
        "help": help,
        "min": min,
        "max": max,
        "above": above,
        "below": below,
        "choices": choices,
        "cli": cli,
        "flags": tuple(flags),
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def choices_of(f: dataclasses.Field) -> list[str] | None:
    c = f.metadata.get("choices")
    if c is None:
        return None
    return list(c() if callable(c) else c)


def check_settings(cfg: Any) -> None:
    """Raise ValueError naming the field when a value lies outside its bounds or choices."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None or isinstance(value, (list, tuple, dict)):
            continue
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None and value < lo:
            raise ValueError(f"{f.name} = {value}: must be ≥ {lo}")
        if hi is not None and value > hi:
            raise ValueError(f"{f.name} = {value}: must be ≤ {hi}")
        above, below = f.metadata.get("above"), f.metadata.get("below")
        if above is not None and value <= above:
            raise ValueError(f"{f.name} = {value}: must be > {above}")
        if below is not None and value >= below:
            raise ValueError(f"{f.name} = {value}: must be < {below}")
        allowed = choices_of(f)
        if allowed is not None and value not in allowed:
            raise ValueError(f"{f.name} = {value!r}: choose one of {', '.join(map(str, allowed))}")


def bounds_text(f: dataclasses.Field) -> str:
    """A field's bounds as text, e.g. "≥ 1", "in [0, 1)"; "" when it has none."""
    md = f.metadata
    lo = (f"[{md['min']:g}" if md.get("min") is not None else None) or (
        f"({md['above']:g}" if md.get("above") is not None else None
    )
    hi = (f"{md['max']:g}]" if md.get("max") is not None else None) or (
        f"{md['below']:g})" if md.get("below") is not None else None
    )
    if lo and hi:
        return f"in {lo}, {hi}"
    if lo:
        return ("≥ " if lo[0] == "[" else "> ") + lo[1:]
    if hi:
        return ("≤ " if hi[-1] == "]" else "< ") + hi[:-1]
    return ""


def settings_help(config_cls: type) -> str:
    """One line per field: `name (default; choices or bounds): help`, for a command's `--set` keys."""
    lines = []
    for f in dataclasses.fields(config_cls):
        default = default_of(f)
        allowed = choices_of(f)
        extra = " | ".join(map(str, allowed)) if allowed else bounds_text(f)
        default_text = json.dumps(default) if isinstance(default, (str, list)) else str(default).lower()
        detail = f"{default_text}; {extra}" if extra else default_text
        lines.append(f"{f.name} ({detail}): {f.metadata.get('help', '')}")
    return "\n".join(lines)


def help_of(config_cls: type, name: str) -> str:
    """The help text of one field (for commands that take it outside the config)."""
    return {f.name: f for f in dataclasses.fields(config_cls)}[name].metadata.get("help", "")


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"field {f.name} has no default")


def _option(f: dataclasses.Field, annotation: Any) -> Any:
    md = f.metadata
    text = md.get("help", "")
    allowed = choices_of(f)
    if allowed is not None:
        text += f" [one of: {', '.join(map(str, allowed))}]"
    flags = list(md.get("flags") or ["--" + f.name.replace("_", "-")])
    if annotation is bool:
        flags[0] = f"{flags[0]}/--no-{flags[0][2:]}"
    kw: dict[str, Any] = {}
    if md.get("min") is not None:
        kw["min"] = md["min"]
    if md.get("max") is not None:
        kw["max"] = md["max"]
    return typer.Option(default_of(f), *flags, help=text, show_default=True, **kw)


def config_options(config_cls: type, param: str = "config", exclude: Sequence[str] = ()) -> Callable:
    """Decorate a typer command: every CLI field of `config_cls` becomes an option, and the command
    receives the built config as keyword `param` (a bound or choice violation is a usage error)."""
    hints = typing.get_type_hints(config_cls)
    fields = [
        f
        for f in dataclasses.fields(config_cls)
        if f.init and f.metadata.get("cli", True) and f.name not in exclude
    ]

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        own_hints = typing.get_type_hints(fn)
        own = [
            p.replace(annotation=own_hints.get(p.name, p.annotation))
            for p in sig.parameters.values()
            if p.name != param
        ]
        taken = {p.name for p in own}
        clash = [f.name for f in fields if f.name in taken]
        if clash:
            raise TypeError(f"{fn.__name__}: parameters {clash} clash with {config_cls.__name__} fields")
        extra = [
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=_option(f, hints[f.name]),
                annotation=hints[f.name],
            )
            for f in fields
        ]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            values = {f.name: kwargs.pop(f.name) for f in fields}
            try:
                cfg = config_cls(**values)
            except ValueError as e:
                raise typer.BadParameter(str(e)) from None
            return fn(**kwargs, **{param: cfg})

        params = own + extra
        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        del wrapper.__wrapped__  # typer must read the new signature, not the wrapped one
        return wrapper

    return deco
