"""How parties talk: the gRPC wire codec, status mapping and peer identity.

Tier ``transport`` of the core (see :mod:`pets` and docs/ARCHITECTURE.md):

* :mod:`pets.transport.wire`: chunked vector streams and their zero-copy codec;
* :mod:`pets.transport.status`: the one mapping between pets errors and gRPC status codes;
* :mod:`pets.transport.peer`: the caller of a call, from its mutual-TLS auth context.

Nothing here opens a socket; the servers (:mod:`pets.server`) and clients
(:mod:`pets.client`) do.
"""
