"""An app on a real database (both backends) with seeded staff, for the web tests."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from monitor.core.clock import SimulatedClock
from monitor.config import Config
from monitor.core.storage.db import transaction
from monitor.web.app import create_app
from tests.queue_seed import T0, add_staff, web_config


@dataclass
class WebEnv:
    app: FastAPI
    client: TestClient
    sessions: sessionmaker[Session]
    clock: SimulatedClock
    config: Config
    tokens: dict[str, str]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def seed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a seeding function in its own transaction and return its result."""
        with transaction(self.sessions) as session:
            result = fn(session, *args, **kwargs)
            session.flush()
            return getattr(result, "id", result)


@pytest.fixture
def web(sessions: sessionmaker[Session]) -> Iterator[WebEnv]:
    config = web_config()
    clock = SimulatedClock(T0)
    health_calls: list[int] = []

    def health() -> dict[str, Any]:
        health_calls.append(1)
        return {"jobs": {"poll": {"runs": 3, "failures": 0}}}

    app = create_app(config, sessions, clock, health=health)
    with transaction(sessions) as session:
        tokens = add_staff(session)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield WebEnv(app, client, sessions, clock, config, tokens)
