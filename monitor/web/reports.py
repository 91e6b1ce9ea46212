"""Report routes: the timeline and report API (bearer token) and the incident page's downloads (login).

All need the manager role. The incident page itself is the web app's (`monitor/web/pages.py`), which
shows `incident_section(...)` (chart, figures, posts, export links) above its event list.
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from monitor.config import Config
from monitor.reports.export import render, render_section, render_weekly_section, weekly_json
from monitor.reports.figures import weekly_figures
from monitor.core.incidents import IncidentNotFound
from monitor.reports.timeline import Timeline, load_timeline, timeline_json
from monitor.web.deps import AppConfig, DbSession, IncidentId, Manager, Now, PageManager
from monitor.web.errors import ERROR_RESPONSES, action_error
from monitor.web.render import render as render_page

# The exported HTML carries its own inline CSS and SVG and nothing else: allow exactly that.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
FormatQuery = Annotated[Literal["html", "md", "csv"], Query(description="html (chart included), md or csv")]
TableQuery = Annotated[Literal["events", "posts"], Query(description="which CSV: the events or the posts")]


def _load(session: Session, config: Config, incident_id: int, now: datetime) -> Timeline:
    try:
        return load_timeline(session, incident_id, config.detection, config.brands, now)
    except IncidentNotFound as exc:
        raise action_error(exc) from None


def timeline_or_404(incident_id: IncidentId, session: DbSession, config: AppConfig, now: Now) -> Timeline:
    return _load(session, config, incident_id, now)


FoundTimeline = Annotated[Timeline, Depends(timeline_or_404)]  # the incident's whole timeline, or a 404


def incident_section(session: Session, config: Config, incident_id: int, now: datetime) -> dict[str, Markup]:
    """The report parts of the web app's incident page (about, chart, figures, posts)."""
    return render_section(_load(session, config, incident_id, now))


def _download(t: Timeline, fmt: str, table: str) -> Response:
    body, media_type, name = render(t, fmt, table)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "html":
        headers["Content-Security-Policy"] = REPORT_CSP
    return Response(body.encode("utf-8"), media_type=media_type, headers=headers)


def make_reports_router() -> APIRouter:
    """The routes; each names its role first, so nobody learns whether an incident exists before the role check."""
    router = APIRouter(responses=ERROR_RESPONSES)

    @router.get("/api/incidents/{incident_id}/timeline", tags=["reports"],
                summary="Chart series, markers, response figures, events and posts of an incident")
    def timeline_api(staff: Manager, timeline: FoundTimeline) -> JSONResponse:
        return JSONResponse(timeline_json(timeline))

    @router.get("/api/incidents/{incident_id}/report", tags=["reports"],
                summary="The incident report as a file: html (self-contained, chart included), md or csv")
    def report_api(staff: Manager, timeline: FoundTimeline, format: FormatQuery = "html",
                   table: TableQuery = "events") -> Response:
        return _download(timeline, format, table)

    @router.get("/api/reports/weekly", tags=["reports"],
                summary="Response figures per brand and ISO week, with the change against the week before")
    def weekly_api(staff: Manager, session: DbSession, now: Now,
                   brand: Annotated[str | None, Query(max_length=200, description="one brand; all when left out")] = None,
                   weeks: Annotated[int, Query(ge=1, le=104)] = 8) -> JSONResponse:
        return JSONResponse({"weeks": weekly_json(weekly_figures(session, brand, weeks, now))})

    @router.get("/reports/weekly", include_in_schema=False, response_class=HTMLResponse)
    def weekly_page(staff: PageManager, request: Request, session: DbSession, config: AppConfig, now: Now,
                    brand: Annotated[str, Query(max_length=200)] = "",
                    weeks: Annotated[int, Query(ge=1, le=104)] = 8) -> Response:
        rows = weekly_figures(session, brand or None, weeks, now)
        brands = sorted({b.name for b in config.brands} | {w.brand for w in rows})
        section = render_weekly_section(rows, brands, brand or None, weeks)
        return render_page(request, "reports_weekly.html", staff, section=section)

    @router.get("/incidents/{incident_id}/report", include_in_schema=False)
    def report_download(staff: PageManager, timeline: FoundTimeline, format: FormatQuery = "html",
                        table: TableQuery = "events") -> Response:
        return _download(timeline, format, table)

    return router
