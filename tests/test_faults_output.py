"""Strangers' text reaching a terminal or a spreadsheet (issue 17 #9): no control characters, no formulas."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from monitor.cli import app
from monitor.detection.settings import DetectionSettings
from monitor.reports.export import md_escape, render_csv, render_markdown
from monitor.reports.timeline import build_timeline
from monitor.core.storage.db import make_engine, migrate, session_factory, transaction
from monitor.core.storage.schema import Incident
from tests.queue_seed import add_flagged
from tests.reports_seed import crafted_incident, minutes

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b\u202eevil"  # no NUL: that never reaches storage


def _no_controls(text: str) -> None:
    for ch in ("\x1b", "\x07", "\x9b", "\u202e", "\x00"):
        assert ch not in text, repr(text)


def test_queue_command_strips_escape_sequences_and_bel(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    config = tmp_path / "c.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    with transaction(session_factory(engine)) as session:
        add_flagged(session, text=f"acme {ESCAPES} broke", author=f"mallory{ESCAPES}")
    engine.dispose()
    result = CliRunner().invoke(app, ["queue", "--config", str(config)])
    assert result.exit_code == 0, result.output
    _no_controls(result.output)
    assert "@mallory]0;owned[2J[31mredevil: acme ]0;owned[2J[31mredevil broke" in result.output


def test_markdown_report_has_no_control_characters(sessions: sessionmaker[Session]) -> None:
    assert md_escape(f"a{ESCAPES}\x00b") == "a\\]0;owned\\[2J\\[31mredevilb"
    with transaction(sessions) as session:
        incident_id = crafted_incident(session, texts=[f"acme {ESCAPES}"])
        session.get(Incident, incident_id).acknowledged_by = f"eve{ESCAPES}"
    with transaction(sessions) as session:
        t = build_timeline(session, incident_id, DetectionSettings(), minutes(200))
    _no_controls(render_markdown(t))


def test_csv_cells_with_a_semicolon_stay_one_text_cell(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        incident_id = crafted_incident(session, texts=["semi;=1+1", "comma,=2+2", "tab\t=3+3"])
    with transaction(sessions) as session:
        t = build_timeline(session, incident_id, DetectionSettings(), minutes(200))
    body = render_csv(t, "posts").removeprefix("\ufeff")
    assert '"semi;\'=1+1"' in body  # quoted, and the formula after the ; defused
    for delimiter in (",", ";", "\t"):  # however a spreadsheet splits it, no cell starts a formula
        for row in csv.reader(io.StringIO(body), delimiter=delimiter):
            assert not any(cell.lstrip().startswith(("=", "+", "@")) for cell in row), row
