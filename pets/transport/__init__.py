"""How parties talk: the gRPC wire codec, status mapping and peer identity.

Tier ``transport`` of the core (see :mod:`pets` and docs/ARCHITECTURE.md):

* :mod:`pets.transport.wire`: chunked vector streams and their zero-copy codec;
* :mod:`pets.transport.status`: the one mapping between pets errors and gRPC status codes;
* :mod:`pets.transport.peer`: the caller of a call, from its mutual-TLS auth context;
* :mod:`pets.transport.targets`: a server's addresses (one, or its replicas') and the one
  ``round_robin`` channel over them.

Nothing here opens a socket by itself (``targets`` makes the channels the servers
(:mod:`pets.server`) and clients (:mod:`pets.client`) ask for).
"""
