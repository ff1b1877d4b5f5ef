"""The benchmarks (docs/benchmarks.md): scripts run as `python3 bench/NAME.py`, and `lib`."""
