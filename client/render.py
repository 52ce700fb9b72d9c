"""Printing query outcomes: a table for people, JSON for programs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

from pets.client.analyst import Outcome
from pets.query import Query, Result
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
    if outcome.result.dp is not None:
        print_dp(outcome.result, console)


def print_dp(result: Result, console: Console) -> None:
    """The noise facts of a differentially private answer, its 95% intervals and notes."""
    dp = result.dp or {}
    budget = f"epsilon={dp['epsilon']}" if "epsilon" in dp else f"rho={dp.get('rho')}"
    console.print(
        f"differential privacy: {dp.get('mechanism')} noise, {budget} (zCDP rho={dp.get('rho')}),"
        f" unit {dp.get('unit')}, noise from {dp.get('servers')} server(s)",
        soft_wrap=True,
    )
    scales = ", ".join(
        f"{f['field']} scale {f['noise_scale']:.4g} (sd {f['stddev']:.4g})"
        for f in dp.get("fields", [])
    )
    console.print(f"  noise per server and slot: {scales}", soft_wrap=True)
    table = RichTable(title=f"{round(100 * dp.get('confidence', 0.95))}% intervals")
    for key in result.group_by:
        table.add_column(key)
    table.add_column("intervals")
    for i, row in enumerate(result.rows):
        cells = [f"{k} [{lo:.6g}, {hi:.6g}]" for k, (lo, hi) in result.row_intervals(i)]
        table.add_row(*(str(row[k]) for k in result.group_by), "; ".join(cells))
    console.print(table)
    for note in result.notes:
        console.print(f"  [yellow]note[/]: {note}", soft_wrap=True)
