"""Prometheus metrics of the realtime path, exposed at ``/metrics``."""

from prometheus_client import Counter, Gauge, Histogram

open_sockets = Gauge("pos_open_sockets", "Open WebSocket connections", ["stream"])
events_emitted = Counter("pos_events_emitted_total", "Events written to the outbox", ["event"])
events_published = Counter(
    "pos_events_published_total", "Events published to the channel layer", ["path"]
)
publish_failures = Counter(
    "pos_event_publish_failures_total", "Publications to the channel layer that failed"
)
events_delivered = Counter("pos_events_delivered_total", "Events sent to sockets")
fanout_latency = Histogram(
    "pos_fanout_latency_seconds",
    "Time from commit to the event being handed to a socket",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
fanout_handout = Histogram(
    "pos_fanout_handout_seconds",
    "Time to hand one published message (an event, or the events of one transaction) to every "
    "local socket of its outlet (the in-process fan-out)",
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1),
)
socket_sends_suspended = Counter(
    "pos_socket_sends_suspended_total",
    "Live sends that found the socket's transport paused (a slow reader) and were finished "
    "by the socket's writer",
)
socket_resyncs = Counter(
    "pos_socket_resyncs_total", "Sockets that fell behind and were refilled from the log"
)
relay_backlog = Gauge("pos_relay_backlog", "Outbox events not yet published")
oldest_unpublished_age = Gauge(
    "pos_oldest_unpublished_event_age_seconds", "Age of the oldest unpublished outbox event"
)
