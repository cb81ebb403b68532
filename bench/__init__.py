"""The benchmark harness: socket fan-out, idle capacity and replay, against a bare reference.

``python -m bench`` (or ``make bench``) runs it; ``python -m bench --help`` lists the
scenarios and knobs. docs/performance.md holds measured results and how to read them.

Processes: the orchestrator (``bench.cli``) prepares a bench database, starts the project
server (uvicorn on ``asgi:application``) or the reference server (``bench.reference``) pinned
to one core, a load client (``bench.load``) pinned to the other, and an events driver
(``bench.driver``) that commits events at a fixed rate. Every process and every loop is
bounded in count and time and stops by itself; traffic stays on the loopback interface.
"""
