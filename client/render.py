"""Printing query outcomes: a table for people, JSON for programs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from pets.client.analyst import Outcome
from pets.query import Query
from pets.v1 import aggregation_pb2 as pb


def outcome_json(query: Query, outcome: Outcome) -> dict[str, Any]:
    st = outcome.status
    out: dict[str, Any] = {
        "query_id": st.query_id,
        "query": query.describe(),
        "protocol": pb.Protocol.Name(st.spec.protocol).removeprefix("PROTOCOL_").lower(),
        "state": pb.QueryState.Name(st.state).removeprefix("QUERY_STATE_").lower(),
        "contributors": st.contributors,
        "min_holders": st.min_holders,
        "seconds": round(outcome.seconds, 3),
    }
    if outcome.result is not None:
        out["result"] = outcome.result.to_json_obj()
    else:
        out["failure"] = st.failure
        out["failure_detail"] = st.failure_detail
    return out


def print_outcome(query: Query, outcome: Outcome, console: Console | None = None) -> None:
    console = console or Console()
    st = outcome.status
    if outcome.result is None:
        console.print(
            f"[bold red]no result[/]: {query.describe()} ended {st.failure or 'without a result'}"
            f" ({st.failure_detail})"
        )
        return
    headers, rows = outcome.result.to_table_rows()
    table = RichTable()
    for h in headers:
        table.add_column(h)
    for row in rows:
        table.add_row(*row)
    console.print(query.describe(), soft_wrap=True)
    console.print(table)
    console.print(
        f"{st.contributors} holders contributed (min {st.min_holders}), {outcome.seconds:.2f} s",
        soft_wrap=True,
    )
