"""The helper's X25519 seal key, and the statement that vouches for it.

Holders seal their seeds to this key (RFC 9180 HPKE, :mod:`pets.seal`). It is
made on the helper's first start and kept in its store; the helper signs the
public half with its certificate key (:class:`pets.v1.HelperKey`), so the
leader, which relays it to holders, cannot swap in a key of its own.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from pets import seal
from pets.errors import ConfigError
from pets.server.config import ServerConfig
from pets.server.store import Store
from pets.v1 import aggregation_pb2 as pb

SEAL_KEY_SETTING = "seal-private-key"


async def load_or_create(store: Store) -> x25519.X25519PrivateKey:
    """The helper's seal key from its store, made and stored on first start."""
    raw = await store.get_setting(SEAL_KEY_SETTING)
    if raw is None:
        key = x25519.X25519PrivateKey.generate()
        raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        await store.put_setting(SEAL_KEY_SETTING, raw)
    return x25519.X25519PrivateKey.from_private_bytes(raw)


def vouch(config: ServerConfig, key: x25519.X25519PrivateKey) -> pb.HelperKey:
    """The seal key's public half, signed with this helper's certificate key
    (unsigned in ``--insecure`` mode)."""
    public_key = seal.public_bytes(key.public_key())
    statement = pb.HelperKey(helper=config.name, seal_public_key=public_key)
    tls = config.tls
    if tls is not None:
        signing_key = load_pem_private_key(tls.key.read_bytes(), password=None)
        if not isinstance(signing_key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{tls.key} is not the ECDSA key of a `pets certs` certificate")
        statement.certificate = tls.cert.read_bytes()
        statement.signature = seal.sign_helper_key(config.name, public_key, signing_key)
    return statement
