"""What a server checks before evaluating a holder's batch, beyond the points themselves.

The helper must evaluate only batches that a registered holder signed, once
per holder and query: otherwise the leader, who knows k_L, could have the
helper evaluate H(guess) and learn a guessed person's pseudonym, and a holder
could query the PRF many times (issue 16, step 3). The certificate and
signature checks belong to the service (``pets.identity``); this module gives
it the two pure pieces:

* :func:`batch_message`: the bytes a holder signs for one batch (label,
  domain, query, holder behind their 4-byte lengths
  (:func:`pets.lengthprefix.join`), then n and SHA-256 of the batch), so a
  signature cannot be moved to another query, holder or batch;
* :class:`BatchAdmission`: first-batch-only bookkeeping per (query, holder),
  refusing a second batch (``repeated-batch``) even if it is identical (a
  replay), in memory; the service persists it with the query so a restart
  does not forget it.
"""

from __future__ import annotations

import hashlib

from pets import lengthprefix
from pets.linkage.domain import LinkageDomain, as_bytes, query_bytes
from pets.linkage.errors import BatchRejectedError
from pets.zk.curve import POINT_BYTES

BATCH_LABEL = b"pets/linkage/v1/holder-batch"


def batch_message(domain: LinkageDomain, query_id: str | bytes, holder: str, batch: bytes) -> bytes:
    """The bytes a holder signs for its blinded batch."""
    prefixed = lengthprefix.join(
        (
            BATCH_LABEL,
            domain.name.encode("ascii"),
            query_bytes(query_id),
            holder.encode("utf-8"),
        )
    )
    return (
        prefixed
        + (len(batch) // POINT_BYTES).to_bytes(8, "big")
        + hashlib.sha256(as_bytes(batch, "a batch")).digest()
    )


class BatchAdmission:
    """One evaluated batch per (query, holder); :meth:`forget` when a query ends."""

    def __init__(self) -> None:
        self._seen: dict[bytes, set[str]] = {}

    def admit(self, query_id: str | bytes, holder: str) -> None:
        """Record this holder's batch for this query, or refuse a second one."""
        holders = self._seen.setdefault(query_bytes(query_id), set())
        if holder in holders:
            raise BatchRejectedError(
                "repeated-batch", "this holder already sent its batch for this query"
            )
        holders.add(holder)

    def forget(self, query_id: str | bytes) -> None:
        self._seen.pop(query_bytes(query_id), None)

    def __contains__(self, key: tuple[str | bytes, str]) -> bool:
        query_id, holder = key
        return holder in self._seen.get(query_bytes(query_id), set())
