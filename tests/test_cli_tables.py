"""Every table mlm prints keeps every cell whole, on a narrow terminal and piped: folded only
at a space or after `[`, or plain aligned text, never an ellipsis in a number or a label."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pandas as pd
import pytest
import xarray as xr
from rich.console import Console

from mlm import cli

NUMBERS = ["0.6712", "0.04893", "0.4637", "0.8801", "12345", "-0.003141"]


def printed(monkeypatch, draw, width: int = 80, terminal: bool = True) -> str:
    """What `draw()` prints on a terminal (or pipe) `width` columns wide."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width, force_terminal=terminal, color_system=None, legacy_windows=False
    )
    monkeypatch.setattr(cli, "out", console)
    monkeypatch.setattr(cli, "err", Console(file=io.StringIO()))
    draw()
    return buffer.getvalue()


def _wide_predictions():
    """A prediction table with several data columns and a long level label, as a project
    with many predictors gives."""
    table = pd.DataFrame(
        {
            "row": [0, 1],
            "age": [20, 31],
            "sex": ["M", "F"],
            "condition": ["current smoker", "other"],
            "kind": ["other", "current"],
            "dose": [1, 2],
            "site": ["S1W_northern_clinic", "S2E"],
            "mean": [0.6712, 0.4637],
            "sd": [0.04893, 0.003141],
            "q2.5": [0.4637, -0.003141],
            "q97.5": [0.8801, 12345.0],
        }
    )
    draws = xr.DataArray([[[0.0, 1.0]]], dims=("chain", "draw", "row"), name="y")
    request = SimpleNamespace(comparison=None, kind="mean")
    result = SimpleNamespace(draws=draws, request=request, cached=True, path="cache")
    return table, result


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_predict_never_cuts_a_number_or_label_at_80_columns(monkeypatch, terminal):
    table, result = _wide_predictions()
    text = printed(monkeypatch, lambda: cli._print_predictions(table, result), 80, terminal)
    assert "…" not in text, text
    for number in ("0.6712", "0.04893", "0.4637", "0.8801", "0.003141", "1.234e+04"):
        assert number in text, (number, text)
    # the label whole, on one line or folded at its space
    assert "S1W_northern_clinic" in text and "current" in text and "smoker" in text
    if not terminal:
        assert "│" not in text and all(len(line.split()) >= 11 for line in text.splitlines()[1:])


def test_a_narrow_terminal_folds_text_at_spaces_and_keeps_numbers_whole(monkeypatch):
    rows = [["fit", "stale", "model.py changed since the trace of 2026-11-27 was made"]]

    def draw():
        cli._print_table(["stage", "state", "reason"], rows)

    text = printed(monkeypatch, draw, width=40)
    assert "…" not in text and all(len(line) <= 40 for line in text.splitlines()), text
    words = " ".join(line.split("│")[-1].strip() for line in text.splitlines()[2:])
    assert words == rows[0][2]  # folded at spaces only, nothing lost


def test_parameter_names_fold_after_a_bracket_or_a_comma_or_not_at_all(monkeypatch):
    rows = [
        ["sigma_Subject[Intercept]", *NUMBERS, "1.001"],
        ["corr_Subject[Intercept, Days]", *NUMBERS, "1.001"],
    ]
    header = ["parameter", "mean", "sd", "eti95_lb", "eti95_ub", "ess_bulk", "ess_tail", "r_hat"]

    def draw():
        cli._print_table(header, rows, right=set(header[1:]), compact=True)

    for width in (80, 72, 66, 60, 50):
        text = printed(monkeypatch, draw, width)
        assert "…" not in text
        for number in NUMBERS:
            assert number in text, (width, number, text)
        body = [line for line in text.splitlines()[1:] if line.strip() and "─" not in line]
        names: list[list[str]] = []  # each row's name, piece by piece
        for line in body:
            tokens = line.split()
            if len(tokens) >= 8 and tokens[-7:-1] == NUMBERS:
                names.append([" ".join(tokens[:-7])])
            else:
                names[-1].append(line.strip())
        assert ["".join(p + (" " if p.endswith(",") else "") for p in n) for n in names] == [
            "sigma_Subject[Intercept]",
            "corr_Subject[Intercept, Days]",
        ], text
        for pieces in names:
            assert all(p.endswith(("[", ",")) for p in pieces[:-1]), (width, text)


def test_the_loo_comparison_keeps_its_numbers_whole_when_narrow(monkeypatch):
    record = {
        "order": ["a_model_variant_with_a_long_name", "wide"],
        "table": {
            "a_model_variant_with_a_long_name": {
                "elpd": -1234.5678,
                "se": 12.345,
                "elpd_diff": 0.0,
                "dse": 0.0,
                "weight": 0.9876,
                "p": 23.456,
            },
            "wide": {
                "elpd": -1240.1,
                "se": 12.9,
                "elpd_diff": 5.53,
                "dse": 2.1,
                "weight": 0.0124,
                "p": 25.0,
            },
        },
    }
    text = printed(monkeypatch, lambda: cli._print_comparison(record), width=60)
    assert "…" not in text
    for number in ("-1234.6", "12.3", "0.988", "-1240.1", "5.5", "0.012", "23.5"):
        assert number in text, (number, text)
    assert "a_model_variant_with_a_long_name" in text


@pytest.mark.parametrize(
    ("diff", "dse", "said"),
    [
        (-0.5, 0.6, "under 4"),  # a new user's BodyWeight variants: weights 1.000 and 0.000
        (6.0, 3.5, "within 2 SEs of 0"),
        (30.0, 5.0, None),  # a clear difference: no note
        (4.5, 2.0, None),
    ],
)
def test_compare_says_when_two_variants_predict_alike(monkeypatch, diff, dse, said):
    row = {"elpd": -533.2, "se": 10.0, "p": 5.0}
    record = {
        "order": ["dietfactor", "model"],
        "table": {
            "dietfactor": {**row, "elpd_diff": 0.0, "dse": 0.0, "weight": 1.0},
            "model": {**row, "elpd_diff": diff, "dse": dse, "weight": 0.0},
        },
    }
    text = " ".join(printed(monkeypatch, lambda: cli._print_comparison(record)).split())
    note = (
        f"note: model's elpd is {abs(diff):.1f} below dietfactor's, with an SE of {dse:.1f} "
        f"for the difference: no clear difference in predictive accuracy ({said}); the "
        "weights can be 1 and 0 all the same"
    )
    if said:
        assert note in text, text
    else:
        assert "no clear difference" not in text, text
