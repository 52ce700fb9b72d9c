"""The helper's X25519 seal key, and the statement that vouches for it.

Holders seal their seeds to this key (RFC 9180 HPKE, :mod:`pets.seal`). It is
made on the helper's first start and kept in its store; the helper signs the
public half with its certificate key (:class:`pets.v1.HelperKey`), so the
leader, which relays it to holders, cannot swap in a key of its own.

The statement expires (issue 15, item 15): it is signed for
:data:`pets.seal.HELPER_KEY_LIFETIME_SECONDS` (48 h) and holders refuse it
after that. :class:`KeyStatement` signs it at start-up and again whenever the
current one is older than :data:`RESIGN_AFTER_SECONDS` (12 h), checked each
time a statement is handed out (``GetInfo``, ``RegisterQuery``), so every
statement the leader relays outlives the longest query deadline (24 h).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from pets import seal
from pets.server.certificate_key import certificate_signing_key
from pets.server.config import ServerConfig
from pets.server.store import Store
from pets.v1 import aggregation_pb2 as pb

SEAL_KEY_SETTING = "seal-private-key"
#: Re-sign the statement once it is this old (12 h): what is left of its 48 h
#: then still outlasts a query deadline of 24 h.
RESIGN_AFTER_SECONDS = 12 * 3600


async def load_or_create(store: Store) -> x25519.X25519PrivateKey:
    """The helper's seal key from its store, made and stored on first start.

    Helper replicas starting together on one fresh database each make a key, and
    all of them keep the one stored first (``put_setting_if_absent``), so every
    replica opens what holders seal to any of them."""
    raw = await store.get_setting(SEAL_KEY_SETTING)
    if raw is None:
        key = x25519.X25519PrivateKey.generate()
        made = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw = await store.put_setting_if_absent(SEAL_KEY_SETTING, made)
    return x25519.X25519PrivateKey.from_private_bytes(raw)


def vouch(config: ServerConfig, key: x25519.X25519PrivateKey, *, now: float) -> pb.HelperKey:
    """The seal key's public half, signed with this helper's certificate key until
    ``now`` + :data:`pets.seal.HELPER_KEY_LIFETIME_SECONDS` (unsigned in
    ``--insecure`` mode)."""
    public_key = seal.public_bytes(key.public_key())
    not_after = int(now) + seal.HELPER_KEY_LIFETIME_SECONDS
    statement = pb.HelperKey(
        helper=config.name, seal_public_key=public_key, not_after_unix=not_after
    )
    tls = config.tls
    if tls is not None:
        signing_key = certificate_signing_key(tls)
        statement.certificate = tls.cert.read_bytes()
        statement.signature = seal.sign_helper_key(
            config.name, public_key, signing_key, not_after=not_after
        )
    return statement


class KeyStatement:
    """The helper's current seal-key statement, re-signed before it grows old."""

    def __init__(
        self,
        config: ServerConfig,
        key: x25519.X25519PrivateKey,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._key = key
        self._clock = clock
        self._signed_at = clock()
        self._statement = vouch(config, key, now=self._signed_at)

    def current(self) -> pb.HelperKey:
        """The statement to hand out now: signed less than RESIGN_AFTER_SECONDS ago."""
        now = self._clock()
        if now - self._signed_at >= RESIGN_AFTER_SECONDS:
            self._statement = vouch(self._config, self._key, now=now)
            self._signed_at = now
        return self._statement
