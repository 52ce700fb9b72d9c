"""Paillier core of pets: keys, packing, encryption, aggregation, decryption.

Pure computation (no sockets; files only in the explicit key-file helpers).
Keys and ciphertexts are python-paillier (``phe``) compatible: the public key
*is* a :class:`phe.PaillierPublicKey`, a ciphertext int can be wrapped in
:class:`phe.EncryptedNumber`, and ``PaillierPrivateKey.raw_decrypt`` of an
aggregate gives the packed plaintext.

Flow: the analyst calls :func:`generate_keypair`; every holder builds the
query's :class:`PackingLayout` and calls :func:`encrypt_vector`; the leader
folds contributions with :class:`Accumulator` (or :func:`aggregate`); the
analyst calls :func:`decrypt_vector`.

Importing this package raises :class:`~pets.errors.DependencyError` when gmpy2
is missing (see :mod:`pets.paillier._deps`).
"""

from pets.paillier._deps import require_gmpy2

require_gmpy2()

from pets.paillier.aggregation import Accumulator, Contribution, aggregate  # noqa: E402
from pets.paillier.decryption import decrypt_packed, decrypt_vector, raw_decrypt  # noqa: E402
from pets.paillier.encryption import encrypt_packed, encrypt_vector, raw_encrypt  # noqa: E402
from pets.paillier.keys import (  # noqa: E402
    generate_keypair,
    load_private_key,
    private_key_from_json,
    private_key_from_primes,
    private_key_to_json,
    public_key_fingerprint,
    public_key_from_bytes,
    public_key_to_bytes,
    save_private_key,
)
from pets.paillier.packing import PackingLayout, pack, unpack  # noqa: E402
from pets.paillier.pool import RandomnessPool  # noqa: E402
from pets.paillier.serialization import (  # noqa: E402
    ciphertext_width,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
)

__all__ = [
    "Accumulator",
    "Contribution",
    "PackingLayout",
    "RandomnessPool",
    "aggregate",
    "ciphertext_width",
    "ciphertexts_from_bytes",
    "ciphertexts_to_bytes",
    "decrypt_packed",
    "decrypt_vector",
    "encrypt_packed",
    "encrypt_vector",
    "generate_keypair",
    "load_private_key",
    "pack",
    "private_key_from_json",
    "private_key_from_primes",
    "private_key_to_json",
    "public_key_fingerprint",
    "public_key_from_bytes",
    "public_key_to_bytes",
    "raw_decrypt",
    "raw_encrypt",
    "require_gmpy2",
    "save_private_key",
    "unpack",
]
