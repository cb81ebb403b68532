"""uvicorn serving ``asgi:application`` with a small, fixed TCP send buffer per connection.

Linux grows a socket's send buffer up to ``tcp_wmem`` (4 MiB here) on its own, so a stalled
reader would have to miss thousands of events before the server's own per-socket buffer
(``WS_SEND_QUEUE_LIMIT``) came into play. A fixed ``SO_SNDBUF`` on the listening socket,
inherited by every accepted connection, brings that point within a short test, as a
congested network path would.

    python -m tests.faults.tight_server --port 8000 --sndbuf 16384
"""

from __future__ import annotations

import argparse
import socket

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sndbuf", type=int, required=True)
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config("asgi:application", ws="pos.ws_protocol:WebSocketProtocol",
                            ws_per_message_deflate=False,
                            access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
