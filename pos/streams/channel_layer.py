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
"""

from __future__ import annotations

import logging
import time

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


class RedisChannelLayer(ChannelsRedisLayer):
    async def group_send(self, group: str, message: dict) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        connection = self.connection(self.consistent_hash(group))
        names = await connection.eval(
            MEMBERS_SCRIPT, 1, self._group_key(group), int(time.time()) - self.group_expiry
        )
        channels = [name.decode("utf8") for name in names]
        keys_by_connection, messages, capacities = self._map_channel_keys_to_connection(
            channels, message
        )
        for index, keys in keys_by_connection.items():
            over = await self.connection(index).eval(
                DELIVER_SCRIPT,
                len(keys),
                *keys,
                *(messages[key] for key in keys),
                *(capacities[key] for key in keys),
                time.time(),
                self.expiry,
            )
            if over:
                logger.info(
                    "%s of %s channels over capacity in group %s", over, len(channels), group
                )

    async def ping(self) -> None:
        """Open (or check) this process's connection to each Redis of the layer: a process
        that is about to publish pays for connecting before its first commit, not in it."""
        for index in range(self.ring_size):
            await self.connection(index).ping()
