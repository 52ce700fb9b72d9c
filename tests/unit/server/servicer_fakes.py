"""What the servicers use of a ``grpc.aio.ServicerContext``, for in-process tests.

The ``--insecure`` identity header stands in for a client certificate (the
integration tests cover the same flows over mutual TLS); ``abort`` raises
:class:`Aborted` with the status code and message, as gRPC would end the call.
"""

from __future__ import annotations

from pets.transport import wire


class Aborted(Exception):
    pass


class Context:
    def __init__(self, identity: str) -> None:
        self.identity = identity

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [(wire.INSECURE_IDENTITY_HEADER, self.identity)]

    async def abort(self, code: object, message: str) -> None:
        raise Aborted(f"{code}: {message}")
