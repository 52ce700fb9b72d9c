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


def effective_max_holders(requested: int, min_holders: int = 1) -> int:
    """``requested`` or the default; never below the query's ``min_holders``."""
    max_holders = requested or DEFAULT_MAX_HOLDERS
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
