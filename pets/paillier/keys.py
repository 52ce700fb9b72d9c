"""Paillier key pairs: generation, public-key bytes, private-key files.

Keys are python-paillier (``phe``) objects, so a user can check any result with
``phe`` alone: :class:`phe.PaillierPublicKey` (modulus ``n``, generator
``g = n + 1``) and :class:`phe.PaillierPrivateKey` (primes ``p``, ``q``), as in
Paillier, "Public-Key Cryptosystems Based on Composite Degree Residuosity
Classes", EUROCRYPT 1999.

Sizes: 2048-bit moduli (about 112-bit security) and 3072-bit moduli (about
128-bit, phe's own default) are accepted. Anything else is refused unless the
caller passes ``allow_insecure_test_size=True``, which exists only so tests and
known-answer vectors can use small, fast keys.

Formats:

* public key: ``n`` as unsigned big-endian bytes of exactly
  ``ceil(bits / 8)`` bytes, no leading zero byte (one canonical encoding);
* private key file: a small JSON object a person can read, with ``n``, ``p``
  and ``q`` as decimal strings (strings, not JSON numbers, so tools whose JSON
  numbers are doubles do not round them). Files are written with mode 0600 and
  refused on load when group or others can read them, as ssh does.

No message raised here contains ``p``, ``q`` or any part of a key file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import gmpy2
import phe

from pets.errors import ConfigError, InvalidInputError
from pets.runtime.atomicfile import write_atomic

SUPPORTED_KEY_BITS: tuple[int, ...] = (2048, 3072)
"""Modulus sizes accepted without the test flag."""

MIN_TEST_KEY_BITS = 128
"""Smallest modulus accepted even with ``allow_insecure_test_size=True``."""

PRIVATE_KEY_FORMAT = "pets-paillier-private-key"
PRIVATE_KEY_VERSION = 1

# Product of the odd primes below 1000: a modulus sharing a factor with it is
# certainly not the product of two large primes.
_SMALL_PRIMES_PRODUCT = gmpy2.mpz(1)
for _k in range(3, 1000, 2):
    if gmpy2.is_prime(_k):
        _SMALL_PRIMES_PRODUCT *= _k
del _k


def _check_bits(bits: int, allow_insecure_test_size: bool) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise InvalidInputError("key size must be an integer number of bits")
    if bits in SUPPORTED_KEY_BITS:
        return
    if allow_insecure_test_size and bits >= MIN_TEST_KEY_BITS:
        return
    allowed = " or ".join(str(b) for b in SUPPORTED_KEY_BITS)
    raise InvalidInputError(
        f"unsupported Paillier key size {bits} bits; use {allowed} "
        "(other sizes only with allow_insecure_test_size=True, for tests)"
    )


def key_bits(public_key: phe.PaillierPublicKey) -> int:
    """Bit length of the modulus ``n``."""
    return int(public_key.n).bit_length()


def key_bytes(public_key: phe.PaillierPublicKey) -> int:
    """Byte length of the modulus ``n`` (ciphertexts take twice this)."""
    return (key_bits(public_key) + 7) // 8


def generate_keypair(
    bits: int = 2048, *, allow_insecure_test_size: bool = False
) -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    """Generate a fresh key pair with an ``n`` of exactly ``bits`` bits.

    Delegates to :func:`phe.generate_paillier_keypair`, which draws primes from
    the operating system's CSPRNG (``random.SystemRandom``) and
    ``gmpy2.next_prime``; keeping phe's generator means keys are exactly what a
    phe user would get.
    """
    _check_bits(bits, allow_insecure_test_size)
    public_key, private_key = phe.generate_paillier_keypair(n_length=bits)
    return public_key, private_key


def _check_modulus(n: int, allow_insecure_test_size: bool) -> None:
    """Sanity checks a public party can make on a modulus (not a proof of form)."""
    _check_bits(n.bit_length(), allow_insecure_test_size)
    m = gmpy2.mpz(n)
    if not m & 1:
        raise InvalidInputError("Paillier modulus must be odd")
    if gmpy2.gcd(m, _SMALL_PRIMES_PRODUCT) != 1:
        raise InvalidInputError("Paillier modulus has a small factor")
    if gmpy2.is_square(m):
        raise InvalidInputError("Paillier modulus must not be a perfect square")
    if gmpy2.is_prime(m):
        raise InvalidInputError("Paillier modulus must be composite")


def public_key_to_bytes(public_key: phe.PaillierPublicKey) -> bytes:
    """Encode ``n`` as unsigned big-endian bytes of exactly ``ceil(bits / 8)`` bytes."""
    return int(public_key.n).to_bytes(key_bytes(public_key), "big")


def public_key_from_bytes(
    data: bytes, *, allow_insecure_test_size: bool = False
) -> phe.PaillierPublicKey:
    """Decode and validate a public key written by :func:`public_key_to_bytes`.

    Strict: the length must match the modulus size (no leading zero byte), the
    size must be supported, and ``n`` must be odd, composite, not a square and
    free of factors below 1000. These checks cannot prove that ``n`` is a
    product of two large primes; they reject garbage and truncation.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInputError("public key must be bytes")
    raw = bytes(data)
    if not raw:
        raise InvalidInputError("empty public key")
    if raw[0] == 0:
        raise InvalidInputError("public key encoding has a leading zero byte")
    n = int.from_bytes(raw, "big")
    _check_modulus(n, allow_insecure_test_size)
    return phe.PaillierPublicKey(n)


def public_key_fingerprint(public_key: phe.PaillierPublicKey) -> str:
    """Short, printable identifier of a public key: ``sha256:`` + 32 hex digits."""
    return "sha256:" + hashlib.sha256(public_key_to_bytes(public_key)).hexdigest()[:32]


def private_key_from_primes(
    p: int, q: int, *, allow_insecure_test_size: bool = False
) -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    """Rebuild a key pair from its primes, checking that they make a valid key.

    Used by :func:`load_private_key` and by tests with fixed primes.
    """
    for x in (p, q):
        if isinstance(x, bool) or not isinstance(x, int):
            raise InvalidInputError("Paillier primes must be integers")
    if p == q:
        raise InvalidInputError("Paillier primes must be distinct")
    if p.bit_length() != q.bit_length():
        raise InvalidInputError("Paillier primes must have the same bit length")
    if not (gmpy2.is_prime(p, 40) and gmpy2.is_prime(q, 40)):
        raise InvalidInputError("Paillier private key factors are not prime")
    n = p * q
    _check_bits(n.bit_length(), allow_insecure_test_size)
    # gcd(n, (p-1)(q-1)) = 1 is what lets g = n+1 work; it always holds for
    # same-length primes, but a hand-edited file deserves the check.
    if gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
        raise InvalidInputError("Paillier primes do not give a valid modulus")
    public_key = phe.PaillierPublicKey(n)
    return public_key, phe.PaillierPrivateKey(public_key, p, q)


def private_key_to_json(private_key: phe.PaillierPrivateKey) -> str:
    """Serialise a private key as the JSON text of a key file."""
    doc = {
        "format": PRIVATE_KEY_FORMAT,
        "version": PRIVATE_KEY_VERSION,
        "bits": key_bits(private_key.public_key),
        "n": str(private_key.public_key.n),
        "p": str(private_key.p),
        "q": str(private_key.q),
    }
    return json.dumps(doc, indent=2) + "\n"


def _decimal(doc: dict[str, Any], field: str) -> int:
    value = doc.get(field)
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        # Never echo the value: it may be a secret prime.
        raise InvalidInputError(f"private key field {field!r} must be a decimal string")
    if len(value) > 1 and value[0] == "0":
        raise InvalidInputError(f"private key field {field!r} has leading zeros")
    return int(value)


def private_key_from_json(
    text: str | bytes, *, allow_insecure_test_size: bool = False
) -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    """Parse and validate the JSON written by :func:`private_key_to_json`."""
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        # JSONDecodeError keeps the whole document in ``.doc``: do not chain it.
        raise InvalidInputError("private key file is not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != PRIVATE_KEY_FORMAT:
        raise InvalidInputError(f"not a {PRIVATE_KEY_FORMAT} document")
    if doc.get("version") != PRIVATE_KEY_VERSION:
        raise InvalidInputError("unsupported private key file version")
    n, p, q = _decimal(doc, "n"), _decimal(doc, "p"), _decimal(doc, "q")
    if p * q != n:
        raise InvalidInputError("private key primes do not multiply to n")
    bits = doc.get("bits")
    if bits is not None and bits != n.bit_length():
        raise InvalidInputError("private key 'bits' does not match n")
    return private_key_from_primes(p, q, allow_insecure_test_size=allow_insecure_test_size)


def save_private_key(
    path: str | os.PathLike[str],
    private_key: phe.PaillierPrivateKey,
    *,
    overwrite: bool = False,
) -> None:
    """Write a private key file with mode 0600, atomically.

    Through :func:`pets.runtime.atomicfile.write_atomic`: with
    ``overwrite=False`` an existing file is never replaced
    (:class:`ConfigError`), and a crash never leaves a half-written key.
    """
    write_atomic(path, private_key_to_json(private_key).encode("ascii"), overwrite=overwrite)


def load_private_key(
    path: str | os.PathLike[str], *, allow_insecure_test_size: bool = False
) -> phe.PaillierPrivateKey:
    """Read and validate a private key file written by :func:`save_private_key`.

    Refuses (:class:`ConfigError`) a file that group or others may read or
    write, as ssh does for identity files: a key that has been exposed should
    be replaced, not silently used.
    """
    target = Path(path)
    try:
        with open(target, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
                raise ConfigError(
                    f"private key file {target} is accessible by group or others; "
                    "chmod 600 it (or make a new key if it may have leaked)"
                )
            data = fh.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot read private key file {target}: {reason}") from None
    try:
        _, private_key = private_key_from_json(
            data, allow_insecure_test_size=allow_insecure_test_size
        )
    except InvalidInputError as exc:
        raise ConfigError(f"invalid private key file {target}: {exc}") from None
    return private_key
