"""The Paillier packing layout of a query, agreed by holder, leader and analyst.

All three derive it from the same inputs (the analyst's public key, the
compiled query plan and ``max_holders`` from the query spec), so nobody has
to trust anybody else's arithmetic: a holder packs with it, the leader
checks contribution sizes with it, the analyst unpacks with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pets.errors import InvalidInputError

if TYPE_CHECKING:
    import phe

    from pets.paillier import PackingLayout
    from pets.query import QueryPlan

DEFAULT_MAX_HOLDERS = 1000


def effective_max_holders(plan: QueryPlan, requested: int, min_holders: int = 1) -> int:
    """The most holders a Paillier query takes: ``requested``, or by default
    the smaller of :data:`DEFAULT_MAX_HOLDERS` and what the plan can decode.

    Decoding checks every sum against the 64-bit range that its clipped terms
    allow (:func:`pets.query.decode`), so a query is never accepted for more
    holders than that check can prove exact (``plan.max_holders()``), nor for
    fewer than its ``min_holders``.
    """
    decodable = plan.max_holders()
    max_holders = requested or min(DEFAULT_MAX_HOLDERS, decodable)
    if max_holders > decodable:
        raise InvalidInputError(
            f"max_holders {max_holders} exceeds the {decodable} holders whose sums this query "
            "can decode exactly; lower max_holders or narrow the bounds with a clip"
        )
    if max_holders < min_holders:
        raise InvalidInputError(
            f"max_holders {max_holders} is below min_holders {min_holders}: the query could "
            "never be released"
        )
    return max_holders


def layout_for(
    public_key: phe.PaillierPublicKey, plan: QueryPlan, max_holders: int
) -> PackingLayout:
    """The packing layout for one query under one key."""
    from pets.paillier import PackingLayout

    lo, hi = plan.holder_bounds()
    return PackingLayout.for_key(
        public_key, lo=lo, hi=hi, max_holders=max_holders, length=plan.length
    )
