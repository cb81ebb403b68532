"""The reference: a bare ``websockets`` broadcast server, with no database and no Redis.

Screens connect to any path and get ``{"type": "snapshot", "seq": 0}``; the events driver
connects to ``/publish`` and every text frame it sends is broadcast as is to every screen.
It is the floor the project's fan-out is compared with: the same client, the same event
envelope and size, the same loop (uvloop) and the same core, and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.load import loop_factory

HELLO = '{"type":"snapshot","seq":0}'


async def run(host: str, port: int, max_seconds: float) -> None:
    screens: set[ServerConnection] = set()

    async def handler(connection: ServerConnection) -> None:
        if connection.request.path.startswith("/publish"):
            async for message in connection:
                broadcast(screens, message)
            return
        screens.add(connection)
        try:
            await connection.send(HELLO)
            await connection.wait_closed()
        finally:
            screens.discard(connection)

    async with serve(handler, host, port, compression=None, max_queue=None, backlog=4096):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), max_seconds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(run(args.host, args.port, args.max_seconds))


if __name__ == "__main__":
    main()
