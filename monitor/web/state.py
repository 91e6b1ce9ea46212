"""The web app's state: one typed object that `create_app` builds once and keeps as `app.state.web`.

Routes reach it through the dependencies in `monitor.web.deps`; code without dependency injection
(error handlers, page rendering) calls `web_state(request)`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection, Request

from monitor.config import Config
from monitor.core.clock import Clock
from monitor.web.throttle import LoginThrottle

HealthProvider = Callable[[], dict[str, Any]]  # the daemon's in-process view for /healthz


@dataclass(frozen=True)
class WebState:
    config: Config
    sessions: sessionmaker[Session]
    clock: Clock
    templates: Jinja2Templates
    login_throttle: LoginThrottle
    health: HealthProvider | None = None  # set when the daemon serves the app


def web_state(request: HTTPConnection) -> WebState:
    """The app's state (also the dependency every other one in `monitor.web.deps` builds on)."""
    state = request.app.state.web
    if not isinstance(state, WebState):  # only create_app sets it; anything else is a wiring bug
        raise TypeError(f"app.state.web is {type(state).__name__}, not WebState")
    return state


async def state_dependency(request: Request) -> WebState:
    """`web_state` as a dependency: a coroutine, so FastAPI runs it on the event loop, not in a worker thread."""
    return web_state(request)
