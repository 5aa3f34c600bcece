"""Logging set-up shared by every `diskv` process: level, text or JSON lines, capped files.

Rules kept here:
- One handler on the root logger, configured once per process; a second call replaces it.
- JSON lines carry the same fields as text lines (time, level, logger, message) plus any
  exception, so a log shipper needs no parser of our text format.
- A log file never grows without bound: it is rotated at `LOG_FILE_BYTES_MAX`, keeping
  `LOG_FILE_BACKUPS` old files.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TextIO

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")

LOG_FILE_BYTES_MAX = 16 * 1024 * 1024
"""A server's log file is rotated past this size: enough for days of INFO lines."""

LOG_FILE_BACKUPS = 3
"""Rotated log files kept beside the current one (so at most 4 x 16 MiB per server)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `time`, `level`, `logger`, `message`, `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str = "info",
    log_format: str = "text",
    *,
    stream: TextIO | None = None,
    log_file: Path | None = None,
) -> None:
    """Send every log record to `log_file` (rotated) or `stream` (default stderr).

    Raises:
        ValueError: an unknown level or format.
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler: logging.Handler
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_FILE_BYTES_MAX, backupCount=LOG_FILE_BACKUPS
        )
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
