"""The JSON reports (`--json FILE`): the arguments as they hold them, and writing one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def args_json(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's values, paths as strings."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def write_report(path: str, report: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(report, indent=2))
