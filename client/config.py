"""Client configuration (data-holder node and analyst), read from TOML.

A holder's ``node.toml`` (relative paths are relative to the file)::

    name = "hospital-01"          # must match the name in its certificate
    schema = "schema.toml"        # the dataset schema all parties share
    leader = "127.0.0.1:7001"     # or the leader's replicas: ["10.0.0.1:7001", "10.0.0.2:7001"]
                                  # (or "10.0.0.1:7001,10.0.0.2:7001"): one channel, calls
                                  # spread by gRPC round_robin, a replica that is down is
                                  # skipped, so a retry lands on another (same for [helpers])
    leader_name = "leader"        # optional: the name in the leader's certificate (every
                                  # replica presents a certificate for this name)
    state_dir = "state/hospital-01"   # remembers which queries it answered

    [helpers]                     # helper name -> address
    helper-1 = "127.0.0.1:7002"   # a holder only checks that each query is shared among
                                  # exactly these helpers; it never connects to them (its
                                  # seeds reach them sealed, through the leader)

    [data]                        # dataset -> local file (.csv, .parquet, .arrow; .npy for
    hospitals = "data/hospital-01/hospitals.csv"   # vectors) or a table: SQLite, PostgreSQL,
                                  # ... (docs/DATA_SOURCES.md, pets.sources.spec)

    [tls]
    ca = "certs/ca.pem"
    cert = "certs/hospital-01.pem"
    key = "certs/hospital-01-key.pem"

    [policy]                      # all optional
    datasets = ["hospitals"]      # datasets it answers on (default: every one in [data])
    columns = { hospitals = ["age", "sex", "prefecture", "cost"] }  # columns a query may touch
    min_group_rows = 5            # refuse a query if a group has 1..min_group_rows-1 rows
    protocols = ["additive", "paillier"]   # the default; "prio3" and "linkage" are opt-in:
                                  # with "linkage" the node answers linked queries on the
                                  # side it holds (docs/LINKAGE.md; it reads that dataset's
                                  # identifier column, which `columns` does not list, and
                                  # the policy applies to that side: client/linked_policy.py)
    same_query_answers = 1        # answer one analyst's same query (fingerprint) at most
    same_query_window_seconds = 86400  # this many times per this window (default: once a day)

An analyst's ``analyst.toml`` has ``name``, ``schema``, ``leader``,
``[helpers]`` (whose addresses it fetches shares from) and ``[tls]`` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pets.errors import ConfigError
from pets.protocols import names as protocol_names
from pets.query import Schema
from pets.runtime.tomlconfig import TlsFiles, check_keys, path_setting, read_toml, tls_setting
from pets.sources.spec import SourceSpec, parse_source_setting
from pets.transport.targets import parse_addresses

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class Endpoints:
    """Where the servers are and how to authenticate to them.

    ``leader`` and each of ``helpers`` is one ``HOST:PORT`` or several, comma-separated
    (one server's replicas; :mod:`pets.transport.targets`)."""

    name: str
    leader: str
    helpers: dict[str, str]
    tls: TlsFiles | None
    schema: Path
    leader_name: str = "leader"


@dataclass(frozen=True)
class NodePolicy:
    datasets: tuple[str, ...] | None = None
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    min_group_rows: int = 1
    protocols: tuple[str, ...] = ("additive", "paillier")
    same_query_answers: int = 1
    same_query_window_seconds: float = 86_400.0


@dataclass(frozen=True)
class NodeConfig:
    endpoints: Endpoints
    data: dict[str, Path | SourceSpec]
    state_dir: Path
    policy: NodePolicy


def _endpoints(data: dict[str, Any], base: Path, insecure: bool) -> Endpoints:
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"name {name!r} must match {_NAME.pattern}")
    # One address per server, or several (its replicas): pets.transport.targets.
    leader = parse_addresses(data.get("leader"), "leader (the leader's address)")
    helpers = data.get("helpers", {})
    if not isinstance(helpers, dict) or not all(isinstance(k, str) for k in helpers):
        raise ConfigError("[helpers] maps each helper's name to its HOST:PORT")
    helpers = {k: parse_addresses(v, f"helpers.{k}") for k, v in helpers.items()}
    tls = tls_setting(data, base, insecure=insecure)
    leader_name = data.get("leader_name", "leader")
    if not isinstance(leader_name, str) or not _NAME.match(leader_name):
        raise ConfigError(f"leader_name {leader_name!r} must match {_NAME.pattern}")
    return Endpoints(
        name=name,
        leader=leader,
        leader_name=leader_name,
        helpers=dict(helpers),
        tls=tls,
        schema=path_setting(base, data.get("schema"), "schema"),
    )


def load_schema(path: Path) -> Schema:
    """The shared dataset schema named by a config's ``schema`` setting."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"schema file {path} does not exist (the dataset schema every party shares; "
            "`pets gen-data` writes one)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read schema file {path}: {exc.strerror}") from None
    return Schema.from_toml(text)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def load_analyst_config(path: Path, *, insecure: bool = False) -> Endpoints:
    data = read_toml(path)
    check_keys(data, {"name", "schema", "leader", "leader_name", "helpers", "tls"}, str(path))
    return _endpoints(data, Path(path).resolve().parent, insecure)


def load_node_config(path: Path, *, insecure: bool = False) -> NodeConfig:
    data = read_toml(path)
    check_keys(
        data,
        {
            "name",
            "schema",
            "leader",
            "leader_name",
            "helpers",
            "tls",
            "data",
            "state_dir",
            "policy",
        },
        str(path),
    )
    base = Path(path).resolve().parent
    endpoints = _endpoints(data, base, insecure)
    files = data.get("data", {})
    if not isinstance(files, dict) or not files:
        raise ConfigError("[data] must map at least one dataset name to a local file")
    pol = data.get("policy", {})
    check_keys(
        pol,
        {
            "datasets",
            "columns",
            "min_group_rows",
            "protocols",
            "same_query_answers",
            "same_query_window_seconds",
        },
        "[policy]",
    )
    answers = pol.get("same_query_answers", 1)
    if not isinstance(answers, int) or isinstance(answers, bool) or answers < 1:
        raise ConfigError("policy.same_query_answers must be a positive integer")
    window = pol.get("same_query_window_seconds", 86_400)
    if (
        not isinstance(window, int | float)
        or isinstance(window, bool)
        or not 0 <= window < float("inf")
    ):
        raise ConfigError("policy.same_query_window_seconds must be a number of seconds >= 0")
    min_rows = pol.get("min_group_rows", 1)
    if not isinstance(min_rows, int) or min_rows < 1:
        raise ConfigError("policy.min_group_rows must be a positive integer")
    protocols = tuple(pol.get("protocols", ("additive", "paillier")))
    if not set(protocols) <= set(protocol_names()):
        raise ConfigError(f"policy.protocols may contain only {protocol_names()}")
    datasets = pol.get("datasets")
    if datasets is not None and not _str_list(datasets):
        raise ConfigError("policy.datasets must be a list of dataset names")
    columns = pol.get("columns", {})
    if not isinstance(columns, dict) or not all(_str_list(v) for v in columns.values()):
        raise ConfigError("policy.columns maps each dataset to a list of column names")
    policy = NodePolicy(
        datasets=tuple(datasets) if datasets is not None else None,
        columns={k: tuple(v) for k, v in columns.items()},
        min_group_rows=min_rows,
        protocols=protocols,
        same_query_answers=answers,
        same_query_window_seconds=float(window),
    )
    return NodeConfig(
        endpoints=endpoints,
        data={k: parse_source_setting(k, v, base) for k, v in files.items()},
        state_dir=path_setting(base, data.get("state_dir", f"state/{endpoints.name}"), "state_dir"),
        policy=policy,
    )
