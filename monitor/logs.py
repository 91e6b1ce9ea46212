"""Logging: readable lines on a terminal, one JSON object per line everywhere else."""
from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter
from rich.logging import RichHandler


def setup_logging(level: str = "INFO", json_output: bool | None = None) -> None:
    """Configure the root logger once; `json_output=None` means JSON unless stderr is a terminal."""
    use_json = (not sys.stderr.isatty()) if json_output is None else json_output
    if use_json:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                          rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})
        )
    else:
        handler = RichHandler(show_path=False, rich_tracebacks=True)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler.executors.default", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # A run skipped because the previous one is still going is the design (max_instances=1), not news.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
