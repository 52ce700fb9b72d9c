"""Server configuration, read from a TOML file (``pets serve --config``).

Example for a leader (relative paths are relative to the config file)::

    role = "leader"            # or "helper"
    name = "leader"            # must match the name in this server's certificate
    listen = "127.0.0.1:7001"  # port 0 picks a free port (see port_file)
    state_dir = "state/leader" # SQLite database lives here
    # state = "postgresql://pets@db.example/pets_leader"  # optional: PostgreSQL instead
    #   of SQLite (password from PGPASSWORD or ~/.pgpass); one database per server
    # replica = "leader-a"     # optional, with `state`: this process's name among the
    #   server's replicas on that database (default: random per start)
    schema = "schema.toml"     # leader: the dataset schema all parties share
    min_holders = 3            # server-wide floor; a query may raise it, never lower it

    [tls]                      # mutual TLS (the default); omit only with --insecure
    ca = "certs/ca.pem"
    cert = "certs/leader.pem"
    key = "certs/leader-key.pem"

    [[helpers]]                # leader only: the helpers, in share order
    name = "helper-1"
    address = "127.0.0.1:7002" # or its replicas: ["10.0.1.1:7002", "10.0.1.2:7002"] (or
                               # comma-separated): calls spread by gRPC round_robin

    [limits]                   # all optional; these are the defaults
    max_vector_length = 10000000        # values (or ciphertexts) per contribution
    max_concurrent_contributions = 16   # streams being received at once (memory bound)
    max_streams_per_holder = 4          # of those, held or awaited by one holder at once
    contribution_idle_timeout_seconds = 30  # a stream silent this long is dropped
    max_open_queries_per_analyst = 32
    default_deadline_seconds = 60
    max_deadline_seconds = 86400
    finalize_timeout_seconds = 30       # how long helpers get to finalise
    contribution_timeout_seconds = 300  # a contribution stream must finish within this
    max_holders = 1000000               # the most holders a query may require (min_holders)
    min_intersection = 10               # linked queries: fewest matched records released
    linked_queries_per_domain = 50      # linked queries accepted per linkage domain (all
    linked_query_window_seconds = 604800  # analysts) within this window; 0: none at all
    release_window_seconds = 604800     # how long a release's contributor set binds the
                                        # next ones of its fingerprint (the release rule)
    finalise_lease_seconds = 30         # replicas: a finaliser that stops renewing its
                                        # lease this long is taken over by another

    [policy]                   # leader, optional: analysts must prove attributes
    require = "accreditation >= 2 and purpose in {public-health, research}"
    issuer_public_key = "issuer.pub"
    schema_id = "pets/analyst/v1"  # required: only credentials of this schema count

    [dp]                       # optional, leader and helpers (docs/DP.md)
    require = true             # refuse queries without `dp epsilon|rho`
    max_epsilon = 1            # per-query caps (optional)
    max_rho = 0.5
    budget_rho = 0.5           # budget of a new (analyst, dataset) privacy filter
    delta = 1e-6               # (epsilon, delta) reports
    # A helper needs `schema` too to serve DP queries: it derives the noise itself.

    [metrics]                  # optional, any server: Prometheus metrics over HTTP
    listen = "127.0.0.1:9464"  # serves /metrics here; no [metrics] table: no metrics port
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pets.dp.policy import DpPolicy
from pets.errors import ConfigError
from pets.runtime.tomlconfig import TlsFiles, check_keys, path_setting, read_toml, tls_setting
from pets.transport.targets import parse_addresses

ROLES = ("leader", "helper")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class HelperEndpoint:
    name: str
    address: str  # HOST:PORT, or several comma-separated: the helper's replicas


@dataclass(frozen=True)
class Limits:
    max_vector_length: int = 10_000_000
    max_concurrent_contributions: int = 16
    max_streams_per_holder: int = 4
    contribution_idle_timeout_seconds: float = 30.0
    max_open_queries_per_analyst: int = 32
    default_deadline_seconds: float = 60.0
    max_deadline_seconds: float = 86_400.0
    finalize_timeout_seconds: float = 30.0
    contribution_timeout_seconds: float = 300.0
    # A query's min_holders (and close_after) may not exceed it (issue 15, item 3).
    max_holders: int = 1_000_000
    # Releases of one fingerprint within this window must have the same contributor
    # set (pets.server.release_policy).
    release_window_seconds: float = 604_800.0
    # Replicas on PostgreSQL (issue 14): how long a finalisation lease lasts unrenewed.
    finalise_lease_seconds: float = 30.0
    # Record linkage (issue 16): the fewest matched records a linked query may
    # release; a query may raise it, never lower it (server/leader/linkage.py).
    min_intersection: int = 10
    # The per-domain linked-query budget (pets.server.linked_budget): at most this many
    # linked queries per linkage domain, all analysts together, within the window;
    # 0 admits no linked query.
    linked_queries_per_domain: int = 50
    linked_query_window_seconds: float = 604_800.0

    def __post_init__(self) -> None:
        budget = self.linked_queries_per_domain
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
            raise ConfigError(
                f"limits.linked_queries_per_domain must be a non-negative int, got {budget!r}"
            )
        for name, kind in (
            ("max_vector_length", int),
            ("max_concurrent_contributions", int),
            ("max_streams_per_holder", int),
            ("contribution_idle_timeout_seconds", float),
            ("max_open_queries_per_analyst", int),
            ("default_deadline_seconds", float),
            ("max_deadline_seconds", float),
            ("finalize_timeout_seconds", float),
            ("contribution_timeout_seconds", float),
            ("max_holders", int),
            ("release_window_seconds", float),
            ("finalise_lease_seconds", float),
            ("min_intersection", int),
            ("linked_query_window_seconds", float),
        ):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if kind is int:
                ok = ok and isinstance(value, int)
            if not ok or not 0 < value < float("inf"):
                raise ConfigError(
                    f"limits.{name} must be a positive {kind.__name__}, got {value!r}"
                )
        if self.default_deadline_seconds > self.max_deadline_seconds:
            raise ConfigError("limits.default_deadline_seconds exceeds max_deadline_seconds")


@dataclass(frozen=True)
class Policy:
    require: str
    issuer_public_key: Path
    # The credential must reveal this attribute, equal to the analyst's certificate
    # name, so a credential cannot be lent to another analyst.
    subject_attribute: str = "subject"
    # Only credentials of this schema are accepted (parse_config requires it).
    schema_id: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    role: str
    name: str
    listen: str
    state_dir: Path
    min_holders: int
    tls: TlsFiles | None
    schema: Path | None = None
    helpers: tuple[HelperEndpoint, ...] = ()
    limits: Limits = field(default_factory=Limits)
    policy: Policy | None = None
    port_file: Path | None = None
    # HOST:PORT of the Prometheus /metrics endpoint ([metrics] listen); None: off.
    metrics_listen: str | None = None
    # A PostgreSQL URL: the server's state lives there instead of SQLite in state_dir.
    state_url: str | None = None
    dp: DpPolicy = field(default_factory=DpPolicy)
    # This process's name among the server's replicas on a PostgreSQL database
    # ("": a fresh random one per start).
    replica: str = ""

    @property
    def database(self) -> Path:
        return self.state_dir / "pets.sqlite"


def parse_config(data: dict[str, Any], base: Path, *, insecure: bool = False) -> ServerConfig:
    """Validate a parsed TOML document; ``base`` anchors relative paths."""
    check_keys(
        data,
        {
            "role",
            "name",
            "listen",
            "state_dir",
            "schema",
            "min_holders",
            "tls",
            "helpers",
            "limits",
            "policy",
            "port_file",
            "metrics",
            "state",
            "replica",
            "dp",
        },
        "the server config",
    )
    role = data.get("role")
    if role not in ROLES:
        raise ConfigError(f"role must be one of {ROLES}, got {role!r}")
    name = data.get("name", role)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"name {name!r} must match {_NAME.pattern}")
    listen = data.get("listen", "127.0.0.1:0")
    if not isinstance(listen, str) or ":" not in listen:
        raise ConfigError(f"listen must be HOST:PORT, got {listen!r}")
    min_holders = data.get("min_holders", 3)
    if not isinstance(min_holders, int) or min_holders < 1:
        raise ConfigError(f"min_holders must be a positive integer, got {min_holders!r}")
    tls = tls_setting(data, base, insecure=insecure)
    helpers = []
    for h in data.get("helpers", []):
        check_keys(h, {"name", "address"}, "[[helpers]]")
        if not isinstance(h.get("name"), str) or not _NAME.match(h["name"]):
            raise ConfigError(f"helper name {h.get('name')!r} must match {_NAME.pattern}")
        # One address, or several: the helper's replicas (pets.transport.targets).
        address = parse_addresses(h.get("address"), f"helper {h['name']}: address")
        helpers.append(HelperEndpoint(h["name"], address))
    if len({h.name for h in helpers}) != len(helpers):
        raise ConfigError("helper names must be unique")
    if role == "leader" and not helpers:
        raise ConfigError("a leader needs at least one [[helpers]] entry")
    if role == "helper" and helpers:
        raise ConfigError("[[helpers]] is for the leader only")
    schema = path_setting(base, data["schema"], "schema") if "schema" in data else None
    if role == "leader" and schema is None:
        raise ConfigError("a leader needs `schema`, the dataset schema file all parties share")
    lim = data.get("limits", {})
    check_keys(lim, set(Limits.__dataclass_fields__), "[limits]")
    limits = Limits(**lim)
    policy = None
    if "policy" in data:
        p = data["policy"]
        allowed = {"require", "issuer_public_key", "subject_attribute", "schema_id"}
        check_keys(p, allowed, "[policy]")
        if role != "leader":
            raise ConfigError("[policy] is for the leader only")
        if not isinstance(p.get("require"), str):
            raise ConfigError("policy.require must be a predicate string")
        subject = p.get("subject_attribute", "subject")
        schema_id = p.get("schema_id")
        if not isinstance(subject, str) or not subject:
            raise ConfigError("policy.subject_attribute must be an attribute name")
        if not isinstance(schema_id, str) or not schema_id:
            raise ConfigError(
                'policy.schema_id is required (e.g. schema_id = "pets/analyst/v1"): without '
                "it a credential of any schema from the trusted issuer would prove the policy"
            )
        policy = Policy(
            p["require"],
            path_setting(base, p.get("issuer_public_key"), "policy.issuer_public_key"),
            subject_attribute=subject,
            schema_id=schema_id,
        )
    port_file = (
        path_setting(base, data["port_file"], "port_file") if data.get("port_file") else None
    )
    dp = DpPolicy.from_dict(data.get("dp", {}))
    if dp.require and schema is None:
        raise ConfigError(
            "dp.require needs `schema`: a server derives each query's noise from the schema"
        )
    state_url = data.get("state")
    if state_url is not None and (
        not isinstance(state_url, str) or not state_url.startswith(_POSTGRES_SCHEMES)
    ):
        raise ConfigError(
            'state must be a PostgreSQL URL ("postgresql://..."); for SQLite set state_dir'
        )
    replica = data.get("replica", "")
    if not isinstance(replica, str) or (replica and not _NAME.match(replica)):
        raise ConfigError(f"replica {replica!r} must match {_NAME.pattern}")
    if replica and state_url is None:
        raise ConfigError("replica names a process among replicas on a PostgreSQL `state`")
    metrics_listen = None
    if "metrics" in data:
        metrics = data["metrics"]
        if not isinstance(metrics, dict):
            raise ConfigError('[metrics] must be a table, e.g. listen = "127.0.0.1:9464"')
        check_keys(metrics, {"listen"}, "[metrics]")
        metrics_listen = metrics.get("listen", "127.0.0.1:9464")
        if not isinstance(metrics_listen, str) or ":" not in metrics_listen:
            raise ConfigError(f"metrics.listen must be HOST:PORT, got {metrics_listen!r}")
    return ServerConfig(
        role=role,
        name=name,
        listen=listen,
        state_dir=path_setting(base, data.get("state_dir", f"state/{name}"), "state_dir"),
        min_holders=min_holders,
        tls=tls,
        schema=schema,
        helpers=tuple(helpers),
        limits=limits,
        policy=policy,
        port_file=port_file,
        metrics_listen=metrics_listen,
        state_url=state_url,
        dp=dp,
        replica=replica,
    )


def load_config(path: Path, *, insecure: bool = False) -> ServerConfig:
    """Read and validate a server config file."""
    data = read_toml(path)
    return parse_config(data, Path(path).resolve().parent, insecure=insecure)
