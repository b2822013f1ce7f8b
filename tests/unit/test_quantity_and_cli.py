"""Quantities as the core counts them, and the `estuary` command's shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from estuary.cli import main
from estuary.state.quantity import cpu_milli, parse


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        ("64Gi", 1, 64 * 2**30),
        ("500m", 1000, 500),
        (2, 1000, 2000),
        ("1e3", 1, 1000),
        ("0.1", 1000, 100),
        ("100n", 1, 1),  # rounded up: a request is never undercounted
        ("1.5", 1, 2),
        ("8", 1, 8),
    ],
)
def test_quantities_scale_and_round_up(value: str | int, scale: int, expected: int) -> None:
    assert parse(value, scale) == expected


def test_a_bad_quantity_names_itself() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity: 'lots'"):
        cpu_milli("lots")


def test_the_command_has_every_subcommand_a_version_and_completion() -> None:
    runner = CliRunner()
    assert set(main.commands) == {"operator", "crds", "explain", "sim", "agent", "portal", "fence"}
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("estuary, version ")
    completion = runner.invoke(main, [], env={"_ESTUARY_COMPLETE": "bash_source"}, prog_name="estuary")
    assert "_estuary_completion" in completion.output
    assert runner.invoke(main, ["explain", "--help"]).output.count("--namespace") == 1
    assert "--operator-namespace" in runner.invoke(main, ["portal", "--help"]).output  # portal's own parser


def test_crds_check_passes_on_the_committed_crds() -> None:
    crds = Path(__file__).resolve().parents[2] / "crds"
    result = CliRunner().invoke(main, ["crds", "--check", "--out", str(crds)])
    assert result.exit_code == 0, result.output
