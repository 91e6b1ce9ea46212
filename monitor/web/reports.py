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
from monitor.core.storage.db import transaction
from monitor.web.api import IncidentId
from monitor.web.auth import Staff, api_role, page_role
from monitor.web.errors import ERROR_RESPONSES, ApiError
from monitor.web.render import render as render_page

# The exported HTML carries its own inline CSS and SVG and nothing else: allow exactly that.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
FormatQuery = Annotated[Literal["html", "md", "csv"], Query(description="html (chart included), md or csv")]
TableQuery = Annotated[Literal["events", "posts"], Query(description="which CSV: the events or the posts")]


def _load(session: Session, config: Config, incident_id: int, now: datetime) -> Timeline:
    try:
        return load_timeline(session, incident_id, config.detection, config.brands, now)
    except IncidentNotFound as exc:
        raise ApiError(404, str(exc)) from None


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
    router = APIRouter(responses=ERROR_RESPONSES)
    api_manager, page_manager = api_role("manager"), page_role("manager")

    def _timeline(request: Request, incident_id: int) -> Timeline:
        state = request.app.state
        with transaction(state.sessions) as session:
            return _load(session, state.config, incident_id, state.clock.now())

    @router.get("/api/incidents/{incident_id}/timeline", tags=["reports"],
                summary="Chart series, markers, response figures, events and posts of an incident")
    def timeline_api(request: Request, incident_id: IncidentId, staff: Staff = Depends(api_manager)) -> JSONResponse:
        return JSONResponse(timeline_json(_timeline(request, incident_id)))

    @router.get("/api/incidents/{incident_id}/report", tags=["reports"],
                summary="The incident report as a file: html (self-contained, chart included), md or csv")
    def report_api(request: Request, incident_id: IncidentId, format: FormatQuery = "html",
                   table: TableQuery = "events", staff: Staff = Depends(api_manager)) -> Response:
        return _download(_timeline(request, incident_id), format, table)

    @router.get("/api/reports/weekly", tags=["reports"],
                summary="Response figures per brand and ISO week, with the change against the week before")
    def weekly_api(request: Request,
                   brand: Annotated[str | None, Query(max_length=200, description="one brand; all when left out")] = None,
                   weeks: Annotated[int, Query(ge=1, le=104)] = 8,
                   staff: Staff = Depends(api_manager)) -> JSONResponse:
        state = request.app.state
        with transaction(state.sessions) as session:
            rows = weekly_figures(session, brand, weeks, state.clock.now())
        return JSONResponse({"weeks": weekly_json(rows)})

    @router.get("/reports/weekly", include_in_schema=False, response_class=HTMLResponse)
    def weekly_page(request: Request, brand: Annotated[str, Query(max_length=200)] = "",
                    weeks: Annotated[int, Query(ge=1, le=104)] = 8,
                    staff: Staff = Depends(page_manager)) -> Response:
        state = request.app.state
        with transaction(state.sessions) as session:
            rows = weekly_figures(session, brand or None, weeks, state.clock.now())
        brands = sorted({b.name for b in state.config.brands} | {w.brand for w in rows})
        section = render_weekly_section(rows, brands, brand or None, weeks)
        return render_page(request, "reports_weekly.html", staff, section=section)

    @router.get("/incidents/{incident_id}/report", include_in_schema=False)
    def report_download(request: Request, incident_id: IncidentId, format: FormatQuery = "html",
                        table: TableQuery = "events", staff: Staff = Depends(page_manager)) -> Response:
        return _download(_timeline(request, incident_id), format, table)

    return router
