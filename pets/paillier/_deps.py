"""Start-up check: the Paillier core refuses to run without gmpy2.

python-paillier (``phe``) silently falls back to pure-Python big-integer
arithmetic when ``gmpy2`` cannot be imported (``phe.util.HAVE_GMP`` is then
``False``), which makes every modular exponentiation roughly ten times slower.
A service that quietly runs ten times slower is a worse failure than one that
refuses to start, so :func:`require_gmpy2` turns that condition into a
:class:`~pets.errors.DependencyError` with a message that says what to install.
"""

from __future__ import annotations

import importlib

from pets.errors import DependencyError

_HINT = "install it with `pip install gmpy2` (needs the GMP library)"


def require_gmpy2() -> None:
    """Raise :class:`DependencyError` unless gmpy2 is importable and used by phe.

    Checks two things: that ``gmpy2`` itself imports (this package calls
    ``gmpy2.powmod`` and ``gmpy2.mpz`` directly), and that ``phe.util`` saw it
    when it was imported (``phe.util.HAVE_GMP``, set by phe 1.5 in a
    ``try: import gmpy2`` block), so key generation and any phe call made on
    our keys is accelerated too.
    """
    try:
        importlib.import_module("gmpy2")
    except ImportError:
        raise DependencyError(
            f"pets.paillier requires gmpy2 for fast big-integer arithmetic; {_HINT}"
        ) from None
    try:
        phe_util = importlib.import_module("phe.util")
    except ImportError:
        raise DependencyError("pets.paillier requires phe (python-paillier) >= 1.5") from None
    if not getattr(phe_util, "HAVE_GMP", False):
        raise DependencyError(
            "phe (python-paillier) is running without gmpy2 (phe.util.HAVE_GMP is false) "
            f"and would be about 10x slower; {_HINT}, then restart the process"
        )
