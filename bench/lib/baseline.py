"""Running a bare ASGI app exactly as `connector serve` runs the connector.

The ceilings (bench/bare_app.py, bench/bare_ws.py) are measured on the same
server stack as the connector, so the ratio compares the application only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any


def serve(asgi: Any, host: str, port: int, log_level: str) -> None:
    """Run `asgi` exactly as `connector serve` runs the connector (its uvicorn options,
    from the same `CONNECTOR_*` settings), logging like it at `log_level`."""
    import uvicorn

    from connector.cli import server_options
    from connector.settings import Settings

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level.upper())
    logging.getLogger("uvicorn.access").disabled = True
    uvicorn.run(asgi, **server_options(Settings(host=host, port=port)))
