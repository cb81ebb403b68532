"""Where the server's time goes: a summary of py-spy's collapsed stacks.

``python -m bench.profile var/bench/profile-publish-200x100.txt`` prints the functions with
the most samples on top of the stack (self) and anywhere in it (inclusive), and the share of
the samples under a few known parts of the request path.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# Parts of the path, matched against "function (file:line)" frames, first match wins.
PARTS = (
    ("channel layer receive (channels_redis, redis-py)", r"channels_redis|/redis/"),
    ("stream hub dispatch", r"pos/streams/hub\.py"),
    ("catch-up from the log (DB, ORM)", r"\bcatch_up \(pos/streams"),
    ("socket send (consumer, uvicorn, websockets)", r"\bsend \(|websockets/|uvicorn/protocols"),
    ("database (psycopg, ORM)", r"psycopg|django/db/"),
    ("connect/auth/snapshot", r"\bconnect \(|ws_auth|_snapshot"),
)


def _function(frame: str) -> str:
    match = re.match(r"(.*?) \((.*?):\d+\)$", frame.strip())
    if not match:
        return frame.strip()
    name, path = match.groups()
    path = re.sub(r".*/site-packages/", "", path)
    path = re.sub(r".*/(pos|orders|kds|payments|tenants|catalog|bench)/", r"\1/", path)
    return f"{name} ({path})"


def summarize(path: Path, top: int = 25) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    parts: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[_function(frames[-1])] += n
        for name in {_function(f) for f in frames}:
            inclusive[name] += n
        for label, pattern in PARTS:
            if any(re.search(pattern, f) for f in frames):
                parts[label] += n
                break
        else:
            parts["other (event loop, asyncio, Python)"] += n
    if not total:
        return f"{path}: no samples"
    out = [f"{path}: {total} samples"]
    out.append("\nshare by part of the path:")
    out += [f"  {100 * n / total:5.1f}%  {label}" for label, n in parts.most_common()]
    out.append("\ntop functions, self:")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    out.append("\ntop functions, inclusive:")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    for path in args.files:
        print(summarize(path, args.top))


if __name__ == "__main__":
    main()
