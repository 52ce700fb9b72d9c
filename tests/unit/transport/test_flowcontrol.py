"""Every pets server and the leader's helper channels pin the HTTP/2 window and send no
BDP probes (pets/transport/flowcontrol.py)."""

from __future__ import annotations

from pets.server.app import SERVER_OPTIONS
from pets.server.peers import CHANNEL_OPTIONS
from pets.transport.flowcontrol import FLOW_CONTROL_OPTIONS, WINDOW_BYTES


def test_servers_and_helper_links_pin_the_window_without_probes() -> None:
    assert dict(FLOW_CONTROL_OPTIONS) == {
        "grpc.http2.bdp_probe": 0,
        "grpc.http2.lookahead_bytes": WINDOW_BYTES,
    }
    for options in (SERVER_OPTIONS, CHANNEL_OPTIONS):
        assert set(FLOW_CONTROL_OPTIONS) <= set(options)
        names = [name for name, _ in options]
        assert len(names) == len(set(names))  # no option given twice
