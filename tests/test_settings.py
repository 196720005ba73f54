"""One source of defaults and bounds (perr.settings): the dataclass checks them and the CLI shows them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from perr.settings import check_settings, config_options, setting


@dataclass(frozen=True)
class Knobs:
    rate: float = setting(3.0, "samples per second", min=0.5, max=30)
    mode: str = setting("fast", "how", choices=("fast", "slow"))
    loud: bool = setting(False, "say more")
    hidden: int = setting(7, "not on the CLI", cli=False)

    def __post_init__(self) -> None:
        check_settings(self)


def test_bounds_and_choices_are_checked_by_the_dataclass() -> None:
    with pytest.raises(ValueError, match="rate = 40: must be ≤ 30"):
        Knobs(rate=40)
    with pytest.raises(ValueError, match="mode = 'medium': choose one of fast, slow"):
        Knobs(mode="medium")


def test_cli_options_come_from_the_fields() -> None:
    app = typer.Typer()
    seen: list[Knobs] = []

    @app.command()
    @config_options(Knobs)
    def run(config: Knobs, name: str = typer.Option("x", help="own option")) -> None:
        seen.append(config)

    r = CliRunner().invoke(app, ["--rate", "2.5", "--mode", "slow", "--loud", "--name", "y"])
    assert r.exit_code == 0, r.output
    assert seen == [Knobs(rate=2.5, mode="slow", loud=True)]
    assert CliRunner().invoke(app, ["--rate", "0.1"]).exit_code == 2  # typer's own range check
    bad = CliRunner().invoke(app, ["--mode", "medium"])
    assert bad.exit_code == 2 and "choose one of fast, slow" in bad.output
    assert "--hidden" not in CliRunner().invoke(app, ["--help"]).output
