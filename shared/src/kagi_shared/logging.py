"""structlog JSON logs; request, correlation and event ids travel in contextvars."""

from __future__ import annotations

import logging
import sys
from typing import cast

import structlog

from kagi_shared.tracing import log_ids


def configure_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    for noisy in ("aiokafka", "faust", "mode", "kafka", "pymongo", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            log_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    # structlog types get_logger as Any (it returns a lazy proxy); callers use the bound-logger interface.
    return cast("structlog.stdlib.BoundLogger", structlog.get_logger(name))
