"""Command-line options that several benchmarks share, defined once."""

from __future__ import annotations

import argparse
from pathlib import Path

from .sched import CLIENT_SCHED_HELP
from .stack import ROOT


def add_run_options(p: argparse.ArgumentParser) -> None:
    """--source, --keep and --json: what is benchmarked, and what a run leaves behind."""
    p.add_argument("--source", type=Path, default=ROOT,
                   help="checkout whose `connector` package is benchmarked (default: this one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")


def add_console_round_options(p: argparse.ArgumentParser) -> None:
    """The options of an event-to-console round, as bench/latency.py's `run_round` reads
    them (bench/cluster.py passes its own arguments to it for its `--bare` round)."""
    add_timing_options(p)
    p.add_argument("--users", type=int, default=200, help="end users with an open ticket")
    p.add_argument("--logins", type=int, default=10, help="supervisor sessions")
    p.add_argument("--console-procs", type=int, default=1,
                   help="client processes the consoles are spread over (per instance, in "
                        "bench/cluster.py)")
    add_client_options(p)


def add_timing_options(p: argparse.ArgumentParser, what: str = "turns") -> None:
    """--duration, --warmup and --drain: how long a round sends `what`, and waits after."""
    p.add_argument("--duration", type=float, default=10, help="measured seconds per round")
    p.add_argument("--warmup", type=float, default=2,
                   help=f"seconds of {what} first, not counted")
    p.add_argument("--drain", type=float, default=3,
                   help="stop waiting for late frames after this many quiet seconds")


def add_client_options(p: argparse.ArgumentParser) -> None:
    """--client-sched and --no-compression: how the consoles and the load generator run."""
    p.add_argument("--client-sched", choices=("batch", "normal"), default="normal",
                   help=CLIENT_SCHED_HELP)
    p.add_argument("--no-compression", action="store_true",
                   help="consoles do not offer permessage-deflate")
