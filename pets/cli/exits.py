"""The exit statuses of every ``pets`` command, in one place.

* :data:`EXIT_OK` (0): the command did what was asked.
* :data:`EXIT_FAILED` (1): it ran and failed or was refused: any
  :class:`pets.errors.PetsError` (bad configuration, a server that refused,
  a port in use, a proof that does not verify, a demo result that differs).
  :func:`pets.cli.main` reports the error on stderr as
  ``pets <command>: error: <message>``.
* :data:`EXIT_USAGE` (2): the command line itself is wrong (argparse's own
  status): unknown flags, a missing command, arguments that do not parse;
  or arguments that parse but do not fit together, which a handler reports
  by raising :class:`UsageError`.
* :data:`EXIT_NO_RESULT` (3): ``pets query`` only: the query ended without a
  result (for example fewer holders than ``min_holders`` contributed).
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_RESULT = 3
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line that parses but is inconsistent (``--policy`` without ``--schema``).

    Not a :class:`pets.errors.PetsError`: the library never raises it. Handlers
    raise it; :func:`pets.cli.main` reports ``pets <command>: usage: <message>``
    and exits :data:`EXIT_USAGE`.
    """
