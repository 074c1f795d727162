"""Log lines for people (``--log-format text``) or for log collectors (``json``: one object a line).

Things an operator counts or searches for (a stream ended, a REST request answered) are
logged with ``event``: their facts travel as fields, shown as ``key=value`` in text and as
keys of the object in JSON, so neither format needs parsing with regular expressions.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        body: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": getattr(record, "event", None) or record.getMessage(),
        }
        body.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return json.dumps(text) if not text or any(c in text for c in ' "=') else text


def event(logger: logging.Logger, what: str, level: int = logging.INFO, **fields: Any) -> None:
    """One line for one thing that happened: ``what`` and its facts."""
    if logger.isEnabledFor(level):
        text = " ".join([what, *(f"{k}={_text(v)}" for k, v in fields.items() if v is not None)])
        logger.log(level, "%s", text, extra={"event": what, "fields": fields})


def configure(level: str, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # websockets logs every connection's open and close; ours says once how each stream ended.
    logging.getLogger("websockets.server").setLevel(max(logging.WARNING, logging.getLogger().level))
