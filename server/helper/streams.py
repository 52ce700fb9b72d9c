"""Reading the leader's Prepare and Finalize streams: a header, then the contributors.

Both carry the same messages (``FinalizeMessage``): the first holds the
header, which announces how many contributors follow; the contributors come
in batches, sorted by holder and unique. Anything else is refused before a
single seed is looked at.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pets.errors import InvalidInputError
from pets.v1 import aggregation_pb2 as pb


async def read_contributors(
    request_iterator: AsyncIterator[pb.FinalizeMessage],
) -> tuple[pb.FinalizeHeader, list[pb.SealedContribution]]:
    """The header and the contributors of a Prepare or Finalize stream, checked."""
    stream = request_iterator.__aiter__()
    try:
        first = await stream.__anext__()
    except StopAsyncIteration:
        raise InvalidInputError("empty finalisation stream: expected a header") from None
    if not first.HasField("header"):
        raise InvalidInputError("the first finalisation message must carry its header")
    header = first.header
    items = list(first.contributions)
    async for msg in stream:
        if msg.HasField("header"):
            raise InvalidInputError("only the first finalisation message may carry a header")
        items.extend(msg.contributions)
        if len(items) > header.contributors:
            raise InvalidInputError(f"more than the announced {header.contributors} contributors")
    if len(items) != header.contributors:
        raise InvalidInputError(
            f"finalisation announced {header.contributors} contributors, sent {len(items)}"
        )
    holders = [c.holder for c in items]
    if holders != sorted(set(holders)):
        raise InvalidInputError("contributors must be sorted and unique")
    return header, items
