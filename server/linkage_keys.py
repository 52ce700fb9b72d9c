"""What both servers' halves of record linkage share (issue 16; docs/LINKAGE.md).

* :func:`load_secret`: the server's long-term linkage secret (32 bytes from
  ``os.urandom``), made on first use and kept in the store's settings like
  the helper's seal key; each query's key share is derived from it
  (:func:`pets.linkage.derive_key_share`). Never logged.
* :func:`signed_key`: the server's public key share for one query, signed
  with its certificate key (verified mode's announcement, ``LinkageKey``).
* :func:`server_floor` / :func:`query_floor`: ``min_intersection``, the
  server-wide floor (``[limits] min_intersection``) and what a query asks.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from pets.linkage import KeyShare, LinkageDomain, announcement_message
from pets.server.certificate_key import certificate_signing_key
from pets.v1 import aggregation_pb2 as pb

SECRET_SETTING = "linkage-secret"  # noqa: S105 (the setting's name, not a secret)
_ECDSA = ec.ECDSA(hashes.SHA256())


async def load_secret(store: Any) -> bytes:
    """This server's long-term linkage secret, made (os.urandom) and stored on first use."""
    secret = await store.get_setting(SECRET_SETTING)
    if secret is None:  # replicas starting together all keep the first one stored
        secret = await store.put_setting_if_absent(SECRET_SETTING, os.urandom(32))
    return bytes(secret)


def server_floor(config: Any) -> int:
    """The server-wide ``min_intersection`` (``[limits] min_intersection``, default 10)."""
    return int(config.limits.min_intersection)


def query_floor(rt_spec: pb.QuerySpec, plan: Any) -> int:
    """What a query asks for: its plan's and its spec's min_intersection (0: nothing)."""
    planned = getattr(getattr(plan, "linkage", None), "min_intersection", None) or 0
    return max(int(planned), int(rt_spec.min_intersection))


def signed_key(config: Any, role: str, domain: str, query_id: str, key: KeyShare) -> pb.LinkageKey:
    """This server's public key share for one query, signed with its certificate key."""
    public = key.public_key
    statement = pb.LinkageKey(role=role, server=config.name, public_key=public)
    tls = config.tls
    if tls is not None:
        signing = certificate_signing_key(tls)
        statement.certificate = tls.cert.read_bytes()
        statement.signature = signing.sign(
            announcement_message(role, LinkageDomain(domain), query_id, public), _ECDSA
        )
    return statement
