"""HTTP/2 flow control for every pets channel and server: a fixed 4 MiB window, no BDP pings.

gRPC core sizes a connection's receive window from bandwidth-delay-product
(BDP) probes: a PING sent with each burst of received data, answered by the
peer, timed. With little memory pressure the window it arrives at is
``max(4 MiB, 2 x BDP)`` (chttp2 ``TransportFlowControl``). For pets' traffic,
thousands of one-message contributions a second over long-lived streams, the
probes cost more than they tell: a PING and its acknowledgement for a small
message, each a socket write and read on both ends. Measured in the
throughput benchmark (``contributions_per_s``, 200 holders, 2 cores, loaded,
interleaved): with these options the leader makes ~1 fewer ``sendmsg`` and ~2
fewer ``recvmsg`` per contribution and spends ~17% less CPU per contribution,
the holders ~10% less, the helper ~8% less; ``e2e_secure_vs_clear_ratio``
(eight-megabyte uploads) unchanged.

The window is pinned instead (``grpc.http2.lookahead_bytes``: the initial
window each side announces, which nothing re-tunes once probing is off) at the
4 MiB BDP probing reaches on a machine with memory to spare, so large uploads
and Finalize streams keep their throughput on links with a large
bandwidth-delay product; gRPC Java and Go run fixed windows the same way. It
is also the most a peer can have in flight on one stream that pets has not
read, as before.
"""

from __future__ import annotations

WINDOW_BYTES = 4 << 20
"""The fixed HTTP/2 stream window (what BDP probing reaches with memory to spare)."""

FLOW_CONTROL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.http2.bdp_probe", 0),
    ("grpc.http2.lookahead_bytes", WINDOW_BYTES),
)
"""gRPC channel and server arguments: no BDP probes, a fixed :data:`WINDOW_BYTES` window."""
