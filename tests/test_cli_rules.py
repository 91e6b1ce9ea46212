"""The rules every command follows (README "Command line"): bad lines, progress, exit codes."""
from __future__ import annotations

from pathlib import Path

import pytest
import typer

from monitor.cli.common import EXIT_CANNOT_START, EXIT_FAILED, EXIT_USAGE, BadLines, ProgressReport


def test_bad_lines_are_numbered_the_first_ten_shown_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    bad = BadLines(Path("posts.jsonl"))
    bad.exit_if_any()  # none: nothing happens
    for number in range(3, 30):
        bad.add(number, "not JSON")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "posts.jsonl:3: skipped: not JSON" and err[9] == "posts.jsonl:12: skipped: not JSON"
    assert len(err) == 11 and "only the first 10" in err[10]
    with pytest.raises(typer.Exit) as exit_:
        bad.exit_if_any()
    assert exit_.value.exit_code == EXIT_FAILED == 1
    assert "27 bad line(s) skipped" in capsys.readouterr().err
    assert (EXIT_USAGE, EXIT_CANNOT_START) == (2, 3)


def test_progress_off_a_terminal_is_a_line_every_so_often_and_one_at_the_end(
        capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressReport("replay", "simulated minutes", every=0.0, terminal=False) as progress:
        progress.update(10, 40)
        progress.update(20)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("replay: 10/40 simulated minutes (25%), ")
    assert lines[-1].startswith("replay: 20/40 simulated minutes (50%), ") and len(lines) == 3
    with ProgressReport("replay", "minutes", every=3600, terminal=False) as progress:
        progress.update(5, 10)  # within the interval: quiet until the end
    quiet = capsys.readouterr().err.splitlines()
    assert len(quiet) == 1 and quiet[0].startswith("replay: 5/10 minutes (50%), ")
    with ProgressReport("score", "bytes", enabled=False, terminal=False) as progress:
        progress.update(1, 2)
    assert capsys.readouterr().err == ""


def test_model_commands_take_dash_c_and_keep_the_model_table_name_in_their_help() -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    result = CliRunner().invoke(app, ["model", "info", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "-c" in result.output and "[model] table" in result.output
    missing = CliRunner().invoke(app, ["model", "info", "-c", "/nonexistent/flarewatch.toml"])
    assert missing.exit_code == 2 and "No such option" not in missing.output
