"""The web application: staff pages, the REST API, /healthz, the ingest webhook and Slack's buttons.

The daemon serves it in its own process (`create_app(config, sessions, clock, health=...)`);
`flarewatch web` serves it alone. Request handlers are plain functions run in Starlette's thread
pool, each opening its own short transaction.
"""
from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.orm import Session, sessionmaker

from alerts.interactivity import make_slack_router
from monitor.core.escape import http_url
from monitor.config import Config
from monitor.core.clock import Clock
from monitor.core import wording
from monitor.web.reports import make_reports_router
from monitor.web import api, ingest_hook, pages
from monitor.web.errors import ApiError
from monitor.web.handlers import BodyLimit, install_error_handlers
from monitor.metrics import database_registry, exposition
from monitor.web.health import health_report
from monitor.web.sessions import ServerSessionMiddleware
from monitor.web.state import HealthProvider, WebState, web_state
from monitor.web.throttle import LoginThrottle

HERE = Path(__file__).resolve().parent
log = logging.getLogger("flarewatch.web")
MAX_BODY = 1024 * 1024  # forms and API bodies; the ingest webhook and Slack's actions set their own


def ago(value: datetime | None, now: datetime) -> str:
    """How long ago, as an agent glances at it: just now, 5 min ago, 3 h ago, 2 days ago."""
    if value is None:
        return "—"
    seconds = (now - value).total_seconds()
    if seconds < 60:
        return "just now" if seconds > -60 else "in the future"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def _templates() -> Jinja2Templates:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True)  # post text is hostile
    env.filters["safe_url"] = http_url
    env.filters["event_sentence"] = lambda event: wording.event_sentence(event.kind, event.data or {}, event.actor)
    env.filters["event_details"] = lambda event: wording.event_details(event.kind, event.data or {})
    env.filters["hm"] = lambda value: value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"
    env.filters["num"] = lambda value: "—" if value is None else f"{value:,}"
    env.filters["ago"] = ago
    env.filters["plural"] = lambda n, one, many=None: wording.plural(n or 0, one, many)
    return Jinja2Templates(env=env)




class PortInUse(RuntimeError):
    """The web app's address is taken (most often: another flarewatch is already running)."""


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket for the web app, bound here so a taken port is one clear error, not
    uvicorn's log line and exit from deep inside the event loop."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}. Is another flarewatch running? "
                        "Stop it, or set [web] port (or --port) to a free one.") from None
    sock.set_inheritable(True)
    return sock


def _api_docs(app: FastAPI) -> None:
    """Swagger UI from the installed swagger-ui-bundle package: no CDN, so it works offline, and its
    start-up code is a file of ours (/static/api-docs.js), so the strict CSP needs no inline script."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/api/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request) -> Response:
        response = web_state(request).templates.TemplateResponse(request, "api_docs.html", {"openapi_url": app.openapi_url})
        # Swagger UI draws its icons as data: images; nothing else is loosened.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "frame-ancestors 'none'; form-action 'self'")
        return response

    @app.get("/docs", include_in_schema=False)
    def docs_redirect() -> Response:
        return RedirectResponse("/api/docs", status_code=307)


def create_app(config: Config, sessions: sessionmaker[Session], clock: Clock,
               health: HealthProvider | None = None) -> FastAPI:
    app = FastAPI(
        title="flarewatch", version="1",
        description="Flagged-post queue, incidents and sources. Authenticate with `Authorization: Bearer <token>`.",
        docs_url=None, openapi_url="/api/openapi.json", redoc_url=None,  # docs: served below, self-hosted
    )
    state = WebState(config=config, sessions=sessions, clock=clock, templates=_templates(), health=health,
                     login_throttle=LoginThrottle(config.web.login_failures_per_account,
                                                  config.web.login_failures_per_address))
    app.state.web = state  # the only attribute of app.state: routes get it through monitor.web.deps
    app.add_middleware(ServerSessionMiddleware, sessions=sessions, now=clock.now,
                       lifetime=timedelta(hours=config.web.session_hours), https_only=config.web.secure_cookies)
    install_error_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.headers.get("content-type", "").startswith("text/html"):
            # No inline scripts anywhere, so a script smuggled into post text could not run even unescaped.
            response.headers.setdefault("Content-Security-Policy",
                                        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                        "frame-ancestors 'none'; form-action 'self'")
        return response

    @app.get("/healthz", tags=["health"],
             summary="Health of the database, sources, jobs and alert delivery, with reasons (no login)")
    def healthz() -> JSONResponse:
        body, status = health_report(config, sessions, clock, health)
        return JSONResponse(body, status_code=status)

    metrics = database_registry(sessions, clock, config)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse,
             summary="Prometheus metrics (text format); needs `Authorization: Bearer <web.metrics_token>` when set")
    def prometheus_metrics(request: Request) -> Response:
        token = config.web.metrics_token
        if token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
                raise ApiError(401, "a valid metrics token is required (Authorization: Bearer <web.metrics_token>)")
        return Response(exposition(metrics), media_type=CONTENT_TYPE_LATEST)

    # Last, so outermost: every request body is limited (routes may set their own) and every 413 is JSON.
    app.add_middleware(BodyLimit, max_body_size=MAX_BODY)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _api_docs(app)
    app.include_router(api.router)
    app.include_router(ingest_hook.router)
    app.include_router(make_slack_router(sessions, config.alerts, clock))  # POST /slack/actions (signed)
    app.include_router(make_reports_router())  # incident timelines, reports and weekly figures (managers)
    app.include_router(pages.router)
    return app
