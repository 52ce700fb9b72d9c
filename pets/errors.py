"""The one error hierarchy of pets.

Small and flat, in the manner of pyca/cryptography: callers catch
:class:`PetsError` or one of a handful of subclasses, never a zoo. Messages
name the problem and never contain secret material (values, seeds, keys,
openings). Servers map these classes to gRPC status codes in one place
(:mod:`pets.transport.status`).
"""

from __future__ import annotations


class PetsError(Exception):
    """Base class of every error raised on purpose by pets."""


class InvalidInputError(PetsError, ValueError):
    """Malformed or out-of-range input: wrong length, bad encoding, bad value."""


class QueryError(InvalidInputError):
    """A query that cannot be evaluated: unknown column, non-numeric sum, missing bounds."""


class SchemaError(InvalidInputError):
    """A dataset schema that is malformed or inconsistent."""


class OverflowDetectedError(PetsError, ArithmeticError):
    """An aggregate may have wrapped around the ring; its value cannot be trusted."""


class InvalidProofError(PetsError):
    """A proof, signature or presentation that does not verify.

    A malformed proof and a wrong proof raise this same error, so a verifier
    leaks nothing about *why* a proof failed beyond a coarse reason.
    """


class CredentialError(InvalidProofError):
    """A credential that is expired, wrongly signed, or presented with a stale nonce."""


class AuthenticationError(PetsError):
    """The caller could not be identified (no or unknown certificate)."""


class CertificateValidityError(AuthenticationError):
    """A certificate that is expired, or not yet valid, at the time it is checked."""


class PermissionDeniedError(PetsError):
    """The caller is identified but its role or name does not allow the action."""


class NotFoundError(PetsError, LookupError):
    """An unknown query, key or object."""


class ConflictError(PetsError):
    """A request that contradicts recorded state (e.g. a different contribution re-sent)."""


class ThresholdNotMetError(PetsError):
    """Fewer than ``min_holders`` contributed: nothing may be released."""


class NotReadyError(PetsError):
    """The object exists but is not in the state the request needs (e.g. query still open)."""


class UnavailableError(PetsError):
    """A peer server could not be reached or failed while serving the request."""


class QuotaExceededError(PetsError):
    """A server-side quota is used up for now (e.g. a linkage domain's linked-query
    budget): retrying before the window frees a slot is refused the same way."""


class ConfigError(PetsError):
    """A configuration file or command-line setting that is missing or invalid."""


class DependencyError(PetsError, ImportError):
    """A required accelerated dependency (gmpy2, coincurve) is missing."""
