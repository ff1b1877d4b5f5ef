"""What the benchmark scripts in bench/ share, one job a module.

The scripts run as `python3 bench/NAME.py`, so this package is importable as
`lib` (the script's directory comes first on sys.path); the tests import
`bench.lib.smartly` from the repository root. Modules import each other
relatively, so both names work, and nothing here imports `connector` at module
level: the benchmarked package comes from `--source`, in the server processes.

* `procs`: free ports, server processes (start, readiness, stop), the
  `connector` CLI, the fd limit;
* `procfs`: /proc readers (RSS, CPU seconds, scheduler wait, process trees,
  open fds, the load average);
* `cpu`: `CpuMeter`, the CPU use of processes over a measurement;
* `sched`: the client processes' scheduling policy and event loop;
* `machine`: the machine line and the checkout benchmarked;
* `figures`: percentiles and how latencies print;
* `report`: the arguments as the JSON reports hold them, and writing a report;
* `stack`: `Stack`, a temporary database, one integration and the processes
  of one run;
* `staff`: staff accounts and their sessions, through the admin API;
* `smartly`: the Smartly `message_received` turn body (shared with the tests);
* `tokens`: benchmark tokens carried in texts, and the turns that carry them;
* `tickets`: open tickets with need_help turns, claim them;
* `rawhttp`: pre-encoded HTTP/1.1 requests over keep-alive asyncio streams;
* `load`: `paced_load`, the open-loop load generator, and its `LoadResult`;
* `wrk`: one wrk run with bench/ingest.lua, as a `Run`;
* `consoles`: WebSocket consoles in child processes that time every frame;
* `channel`: a fake Chatlayer channel in a child process that times arrivals;
* `threads`: `ThreadStates`, what a server's threads are doing (from /proc);
* `profiles`: py-spy recordings of a server;
* `services`: a fresh PostgreSQL database and a redis-server of the run's own
  (cluster runs), and reading a SQLite or PostgreSQL database alike;
* `options`: command-line options several benchmarks share;
* `baseline`: running a bare ASGI app exactly as `connector serve` runs the
  connector (the ceilings bare_app.py and bare_ws.py).
"""
