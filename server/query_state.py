"""The query states, named once for the leader, the helpers and the store.

The values are ``pets.v1.QueryState``; a query moves OPEN -> CLOSED (the
leader fixed its contributor set) -> READY or FAILED (terminal). Helpers go
from OPEN straight to READY or FAILED.
"""

from __future__ import annotations

from pets.v1 import aggregation_pb2 as pb

OPEN: int = pb.QUERY_STATE_OPEN
CLOSED: int = pb.QUERY_STATE_CLOSED
READY: int = pb.QUERY_STATE_READY
FAILED: int = pb.QUERY_STATE_FAILED
TERMINAL: tuple[int, ...] = (READY, FAILED)


def name(state: int) -> str:
    """``QUERY_STATE_...`` as on the wire, for messages and logs."""
    return pb.QueryState.Name(state)  # type: ignore[arg-type]
