"""A server's addresses and the one gRPC channel that spreads calls over them (issue 14).

A server may run as several replicas (docs/ARCHITECTURE.md, "Clients" and
"The helper"), so holders, analysts and the leader (towards a helper) accept
several addresses for one server:

* in TOML, one ``"HOST:PORT"``, a comma list ``"HOST:PORT,HOST:PORT"`` or an
  array ``["HOST:PORT", "HOST:PORT"]``; in memory always the comma form
  (:func:`join_addresses`), so existing single-address settings are unchanged;
* one channel per server, with gRPC's ``round_robin`` load-balancing policy
  (gRPC's "Load Balancing in gRPC" document, and the service-config
  ``loadBalancingConfig``): a connection to every address, each call on the
  next one that is up. A replica that is down is skipped, so a retried call
  (the holders' and the leader's retries are idempotent) lands on another
  one. One address is passed to gRPC's DNS resolver as it is, so a name with
  several A/AAAA records (replicas behind one name) is balanced too; several
  are resolved once, when the channel opens, into an ``ipv4:``/``ipv6:``
  address list (gRPC's naming document, "ipv4:address[:port][,address[:port],...]").
* with TLS every replica presents the certificate of the *server* (issued for
  its name, ``<name>.<role>.pets``), and the channel checks that name on every
  connection (``grpc.ssl_target_name_override``), whichever address it reached.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence

import grpc

from pets.errors import ConfigError

# gRPC service config choosing round_robin for every call of the channel.
ROUND_ROBIN_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})


def split_addresses(value: str) -> tuple[str, ...]:
    """The addresses of a comma list (one address: a one-element tuple)."""
    return tuple(a.strip() for a in value.split(",") if a.strip())


def join_addresses(addresses: Sequence[str]) -> str:
    """The comma form of several addresses (how configs keep them)."""
    return ",".join(addresses)


def parse_addresses(value: object, what: str) -> str:
    """A server's addresses from a config value: ``"HOST:PORT"``, a comma list or a
    list of ``"HOST:PORT"`` strings, checked; returned in the comma form.

    ``what`` names the setting in the error (e.g. ``"leader"``).
    """
    items: list[str]
    if isinstance(value, str):
        items = list(split_addresses(value))
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        items = []
    if not items or not all(_host_port(a) is not None for a in items):
        raise ConfigError(
            f"{what} must be HOST:PORT, or several (replicas of one server) as "
            '"HOST:PORT,HOST:PORT" or ["HOST:PORT", "HOST:PORT"]'
        )
    if len(set(items)) != len(items):
        raise ConfigError(f"{what} lists an address twice")
    return join_addresses(items)


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``[IPv6]:PORT``; None if malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return None  # an IPv6 address needs brackets
    if not host or "," in host or any(c.isspace() for c in host):
        return None
    return host, int(port)


def channel_target(addresses: str) -> str:
    """The gRPC target for a server's addresses (see the module docstring)."""
    items = split_addresses(addresses)
    if len(items) == 1:
        return items[0]
    v4: list[str] = []
    v6: list[str] = []
    for address in items:
        parsed = _host_port(address)
        if parsed is None:
            raise ConfigError(f"address {address!r} is not HOST:PORT")
        host, port = parsed
        for ip in _resolve(host):
            if ip.version == 4:
                v4.append(f"{ip}:{port}")
            else:
                v6.append(f"[{ip}]:{port}")
    # gRPC takes one family per address list; IPv4 where there is any.
    if v4:
        return "ipv4:" + join_addresses(list(dict.fromkeys(v4)))
    return "ipv6:" + join_addresses(list(dict.fromkeys(v6)))


def _resolve(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(f"cannot resolve server address {host!r}: {exc.strerror}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def open_channel(
    addresses: str,
    credentials: grpc.ChannelCredentials | None,
    server_name: str | None,
    options: Sequence[tuple[str, object]],
) -> grpc.aio.Channel:
    """One channel to a server at ``addresses`` (one or several replicas), calls
    spread by ``round_robin``; with ``credentials`` every replica's certificate must
    carry ``server_name``."""
    opts: list[tuple[str, object]] = [
        *options,
        ("grpc.service_config", ROUND_ROBIN_SERVICE_CONFIG),
    ]
    target = channel_target(addresses)
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=opts)
    assert server_name is not None
    opts.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(target, credentials, options=opts)
