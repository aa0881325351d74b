"""No request bytes in the bridge's log: aiohttp's parser errors are logged without what the peer sent.

When a request cannot be parsed (``Authorization : Bearer …`` with a space before the colon, a control byte
in a header, a bad method line), aiohttp logs "Error handling request" with the parser's exception, whose text
quotes the offending line byte for byte — a client's token went into the bridge log that way. The filter here
sits on the ``aiohttp.server`` logger and rewrites each such record to one line that names the peer, the kind
of error and its status, never the bytes; every other record passes untouched. It is installed once per
process by ``install()`` (the app factory calls it).
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

SERVER_LOGGER = "aiohttp.server"


class ParserErrorFilter(logging.Filter):
    """Rewrites a record carrying a parser error (``HttpProcessingError``) to a line holding no request bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        if not isinstance(exc, HttpProcessingError):
            return True
        peer = record.args[0] if isinstance(record.args, tuple) and record.args else "an unknown peer"
        record.msg = "refused a malformed HTTP request from %s: %s (%s); what it sent is not logged"
        record.args = (str(peer), type(exc).__name__, exc.code)
        record.exc_info = record.exc_text = record.stack_info = None
        if record.levelno > logging.WARNING:  # the peer's mistake, not the bridge's
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


def install() -> None:
    """Put the filter on aiohttp's server logger (once, however many apps the process builds)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, ParserErrorFilter) for f in logger.filters):
        logger.addFilter(ParserErrorFilter())
