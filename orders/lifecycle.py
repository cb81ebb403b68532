"""The order status machine of CONTRACT.md section 4, as data.

```
draft -> pending -> confirmed -> preparing -> ready -> served -> completed
any of draft..served -> cancelled          ready -> preparing (only by ticket recall)
```
"""

from __future__ import annotations

from orders.models import OrderStatus as S

# Transitions anyone allowed to transition orders may ask for.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING, S.CANCELLED}),
    S.PENDING: frozenset({S.CONFIRMED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.PREPARING, S.CANCELLED}),
    S.PREPARING: frozenset({S.READY, S.CANCELLED}),
    S.READY: frozenset({S.SERVED, S.CANCELLED}),
    S.SERVED: frozenset({S.COMPLETED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
}

# Transitions only the kitchen path (a ticket recall) may make.
SYSTEM_ONLY_TRANSITIONS: frozenset[tuple[str, str]] = frozenset({(S.READY, S.PREPARING)})

# Cancelling once the kitchen has started needs a manager (or owner, or super admin).
CANCEL_NEEDS_MANAGER_FROM: frozenset[str] = frozenset({S.PREPARING, S.READY, S.SERVED})

# Orders shown on the orders socket's snapshot.
ACTIVE_STATUSES: frozenset[str] = frozenset(
    {S.DRAFT, S.PENDING, S.CONFIRMED, S.PREPARING, S.READY, S.SERVED}
)

# Statuses an order may be created in.
INITIAL_STATUSES: frozenset[str] = frozenset({S.PENDING, S.DRAFT})


def is_allowed(from_status: str, to_status: str, *, system: bool) -> bool:
    """Whether ``from_status -> to_status`` is an edge of the machine for this caller."""
    if to_status in TRANSITIONS.get(from_status, ()):
        return True
    return system and (from_status, to_status) in SYSTEM_ONLY_TRANSITIONS
