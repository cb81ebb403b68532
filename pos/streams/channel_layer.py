"""The Redis channel layer, with a group send of two round trips instead of four.

Every committed transaction is published with one ``group_send`` from the writing process, and
its latency is part of every event's way to the screens. channels-redis' ``group_send`` makes
four sequential requests to Redis: drop expired memberships, read the members, drop expired
messages of the members' channels (a pipeline), then a script that adds the message where
there is room. Here the first two are one script and the last two are one script, with the
same rules: memberships older than ``group_expiry`` are dropped, messages older than
``expiry`` are dropped, a channel at ``capacity`` is skipped (and counted in the log, as
channels-redis does). Everything else is channels-redis' own, including the messages' format,
so processes on either class exchange messages.

``group_send_blocking`` does the same from sync code in the calling thread, on blocking
connections: a committing thread publishes its events without handing them to an event loop.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer

logger = logging.getLogger(__name__)

# KEYS[1]: the group's sorted set of channels (scored by when they joined).
# ARGV[1]: joined before this are expired.
MEMBERS_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], 0, ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS: channel keys. ARGV: a message per key, then a capacity per key, then now and expiry.
# Returns how many channels were over capacity (those did not get the message).
DELIVER_SCRIPT = """
local n = #KEYS
local now = ARGV[2 * n + 1]
local expiry = tonumber(ARGV[2 * n + 2])
local stale = math.floor(tonumber(now)) - expiry
local over = 0
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, stale)
    if redis.call('ZCARD', KEYS[i]) < tonumber(ARGV[n + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over = over + 1
    end
end
return over
"""


BLOCKING_TIMEOUT_S = 5.0  # a committing thread waits at most this long for Redis


class RedisChannelLayer(ChannelsRedisLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._blocking_lock = threading.Lock()
        self._blocking: dict[int, redis.Redis] = {}

    # --- the two steps, shared by both ways of sending -----------------------------------------
    def _members_args(self, group: str) -> tuple:
        assert self.require_valid_group_name(group), "Group name not valid"
        return (MEMBERS_SCRIPT, 1, self._group_key(group), int(time.time()) - self.group_expiry)

    def _deliveries(self, group: str, names: list[bytes], message: dict):
        """(connection index, arguments of ``DELIVER_SCRIPT``) per Redis the members live on."""
        channels = [name.decode("utf8") for name in names]
        keys_by_connection, messages, capacities = self._map_channel_keys_to_connection(
            channels, message
        )
        for index, keys in keys_by_connection.items():
            yield index, (
                DELIVER_SCRIPT,
                len(keys),
                *keys,
                *(messages[key] for key in keys),
                *(capacities[key] for key in keys),
                time.time(),
                self.expiry,
            )

    def _log_over(self, over: int, group: str, members: int) -> None:
        if over:
            logger.info("%s of %s channels over capacity in group %s", over, members, group)

    # --- from the event loop -------------------------------------------------------------------
    async def group_send(self, group: str, message: dict) -> None:
        connection = self.connection(self.consistent_hash(group))
        names = await connection.eval(*self._members_args(group))
        for index, args in self._deliveries(group, names, message):
            self._log_over(await self.connection(index).eval(*args), group, len(names))

    async def ping(self) -> None:
        """Open (or check) this process's connection to each Redis of the layer: a process
        that is about to publish pays for connecting before its first commit, not in it."""
        for index in range(self.ring_size):
            await self.connection(index).ping()

    # --- from a thread, without a loop -----------------------------------------------------
    def group_send_blocking(self, group: str, message: dict) -> None:
        """``group_send`` from sync code, in the calling thread, on a blocking connection
        pool of this process (thread-safe; one per Redis, its connections kept between
        calls). The committing thread publishes its events itself: no hop to an event loop's
        thread and back after each commit. Same scripts, same messages, same rules."""
        names = self._blocking_client(self.consistent_hash(group)).eval(
            *self._members_args(group)
        )
        for index, args in self._deliveries(group, names, message):
            self._log_over(self._blocking_client(index).eval(*args), group, len(names))

    def ping_blocking(self) -> None:
        """``ping`` for the blocking connections."""
        for index in range(self.ring_size):
            self._blocking_client(index).ping()

    @property
    def can_send_blocking(self) -> bool:
        """False where the hosts name a Sentinel: the blocking pools take addresses or
        connection arguments only, and publication then goes through the event loop."""
        return not any("master_name" in host for host in self.hosts)

    def _blocking_client(self, index: int) -> redis.Redis:
        client = self._blocking.get(index)
        if client is None:
            with self._blocking_lock:
                client = self._blocking.get(index)
                if client is None:
                    host = dict(self.hosts[index])
                    timeouts = {"socket_timeout": BLOCKING_TIMEOUT_S,
                                "socket_connect_timeout": BLOCKING_TIMEOUT_S}
                    address = host.pop("address", None)
                    pool = (redis.ConnectionPool.from_url(address, **{**timeouts, **host})
                            if address is not None
                            else redis.ConnectionPool(**{**timeouts, **host}))
                    client = self._blocking[index] = redis.Redis(connection_pool=pool)
        return client
