"""Context strings that bind presentations to where they are used.

A presentation proves predicates for one verifier nonce *and* one context;
the service binds the context to the purpose and to the authenticated
caller, so a presentation made by one analyst for submitting a query can be
used neither by another analyst nor for anything else.
"""

from __future__ import annotations

SUBMIT_QUERY = "pets/v1/submit-query/"
VERIFY = "pets/v1/verify/"


def submit_query_context(analyst: str) -> str:
    """Context of a presentation attached to ``SubmitQuery`` by ``analyst``."""
    return SUBMIT_QUERY + analyst


def verify_context(caller: str) -> str:
    """Context of a presentation sent to ``Verifier.Verify`` by ``caller``."""
    return VERIFY + caller
