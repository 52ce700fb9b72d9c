"""Summarise a pytest-benchmark JSON file: tables per group, markdown, scaling charts.

Run as ``python -m benchmarks.report results.json`` (``make bench`` does).

pytest-benchmark's own table sorts every benchmark together and knows nothing
about which case is the reference, so comparisons ("packed Paillier vs
plain", "coincurve vs py_ecc") have to be read off by hand. The benchmarks
in this repository state that intent in the JSON instead, and this report
reads it:

* ``benchmark.group`` names a comparison group; one table per group.
* ``benchmark.extra_info["baseline"] = True`` marks the group's reference
  case; every row shows ``time / baseline time`` (mean by default).
* ``benchmark.extra_info["elements"] = n`` (values processed per call) adds a
  throughput column, elements/s = n / mean.
* ``benchmark.extra_info["scaling"] = {"series": str, "x": number, "x_label":
  str, "rss_mb": number}`` puts the case on a scaling chart: one PNG per
  series with time against ``x`` and RSS against ``x`` on a second axis.
  ``"rss_label"`` says whose memory ``rss_mb`` is (default "peak RSS"; the
  service benchmarks say "leader peak RSS"); a ``"helper_rss_mb"`` is drawn
  as a second memory line. Every chart has a legend naming each line.

Outputs go next to the JSON: ``results.md`` (the same tables, for a PR or
the docs) and ``scaling-<series>.png``. The terminal table uses ``rich`` when
it is installed and plain text otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pets.errors import InvalidInputError, PetsError

__all__ = [
    "Group",
    "Row",
    "ScalingPoint",
    "build_groups",
    "load_results",
    "main",
    "plot_scaling",
    "render_markdown",
    "render_text",
    "scaling_series",
    "skipped_benchmarks",
    "write_report",
]

Stat = Literal["mean", "median", "min"]
UNGROUPED = "(ungrouped)"
MARKDOWN_NAME = "results.md"

_UNITS: tuple[tuple[str, float], ...] = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))


@dataclass(frozen=True)
class Row:
    """One benchmark case, with the statistics the report shows (seconds)."""

    group: str
    name: str
    fullname: str
    mean: float
    median: float
    min: float
    stddev: float
    ops: float
    rounds: int
    elements: float | None = None
    baseline: bool = False
    ratio: float | None = None

    @property
    def throughput(self) -> float | None:
        """Elements processed per second (``elements / mean``), when known."""
        if self.elements is None or self.mean <= 0:
            return None
        return self.elements / self.mean


@dataclass(frozen=True)
class Group:
    """A comparison group: its rows (baseline first, then fastest first)."""

    name: str
    rows: tuple[Row, ...]
    baseline: str | None
    stat: Stat = "mean"
    warnings: tuple[str, ...] = field(default=())

    @property
    def unit(self) -> tuple[str, float]:
        """The time unit (label, seconds per unit) that suits this group's fastest row."""
        return _time_unit(min((r.mean for r in self.rows), default=1.0))


@dataclass(frozen=True)
class ScalingPoint:
    """One point of a scaling series: the benchmark's time and memory at ``x``."""

    series: str
    x: float
    x_label: str
    mean: float
    stddev: float
    rss_mb: float | None
    name: str
    rss_label: str = "peak RSS"
    helper_rss_mb: float | None = None


# --------------------------------------------------------------------------- loading


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a ``--benchmark-json`` file and check it has the shape we rely on."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"benchmark results not found: {p}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot read benchmark results {p}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise InvalidInputError(f"{p} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    return data


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _has_stats(bench: Mapping[str, Any]) -> bool:
    stats = bench.get("stats")
    return isinstance(stats, dict) and "mean" in stats


def _name(bench: Mapping[str, Any]) -> str:
    return str(bench.get("name") or bench.get("fullname") or "?")


def skipped_benchmarks(data: Mapping[str, Any]) -> list[str]:
    """Names of benchmarks without statistics (failed, or run with --benchmark-disable)."""
    return [_name(b) for b in data["benchmarks"] if not _has_stats(b)]


def _rows(data: Mapping[str, Any]) -> list[Row]:
    rows = []
    for bench in data["benchmarks"]:
        if not _has_stats(bench):
            continue
        name = _name(bench)
        stats = bench["stats"]
        extra = bench.get("extra_info") or {}
        elements = extra.get("elements")
        rows.append(
            Row(
                group=bench.get("group") or UNGROUPED,
                name=name,
                fullname=str(bench.get("fullname") or name),
                mean=_number(stats["mean"], f"{name} mean"),
                median=_number(stats.get("median", stats["mean"]), f"{name} median"),
                min=_number(stats.get("min", stats["mean"]), f"{name} min"),
                stddev=_number(stats.get("stddev", 0.0), f"{name} stddev"),
                ops=_number(stats.get("ops", 0.0), f"{name} ops"),
                rounds=int(stats.get("rounds", 0)),
                elements=None if elements is None else _number(elements, f"{name} elements"),
                baseline=bool(extra.get("baseline", False)),
            )
        )
    return rows


def _ratio_to(row: Row, base: Row, stat: Stat) -> float | None:
    ref = getattr(base, stat)
    if ref <= 0:
        return None
    ratio = getattr(row, stat) / ref
    if row.elements and base.elements and row.elements != base.elements:
        ratio *= base.elements / row.elements  # per-element times
    return ratio


def build_groups(data: Mapping[str, Any], *, stat: Stat = "mean") -> list[Group]:
    """Group the benchmarks and compute each row's ratio to its group's baseline.

    ``ratio = row.<stat> / baseline.<stat>``, so 2.0 means twice as slow as the
    baseline. When both cases declare how many ``elements`` they process and
    those differ (a slow baseline timed on a subset), the ratio compares time
    per element instead, so it stays "how many times slower per value". A
    group without a marked baseline has no ratios; a group with
    several uses the first and says so in ``warnings``. Groups are sorted by
    name (ungrouped last).
    """
    if stat not in ("mean", "median", "min"):
        raise InvalidInputError(f"unknown statistic {stat!r}")
    by_group: dict[str, list[Row]] = {}
    for row in _rows(data):
        by_group.setdefault(row.group, []).append(row)

    groups = []
    for gname in sorted(by_group, key=lambda g: (g == UNGROUPED, g)):
        rows = by_group[gname]
        names = [r.name for r in rows]
        # Same test name from two modules: show the full node ids instead.
        rows = [replace(r, name=r.fullname) if names.count(r.name) > 1 else r for r in rows]
        warnings = []
        bases = [r for r in rows if r.baseline]
        base = bases[0] if bases else None
        if len(bases) > 1:
            others = ", ".join(r.name for r in bases[1:])
            warnings.append(f"several baselines marked; using {bases[0].name}, ignoring {others}")
        if base is not None:
            rows = [replace(r, ratio=_ratio_to(r, base, stat), baseline=r is base) for r in rows]
        rows.sort(key=lambda r: (not r.baseline, r.mean))
        groups.append(
            Group(
                name=gname,
                rows=tuple(rows),
                baseline=base.name if base else None,
                stat=stat,
                warnings=tuple(warnings),
            )
        )
    return groups


def scaling_series(data: Mapping[str, Any]) -> dict[str, list[ScalingPoint]]:
    """Collect the ``extra_info["scaling"]`` points by series, each sorted by ``x``."""
    series: dict[str, list[ScalingPoint]] = {}
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info") or {}
        sc = extra.get("scaling")
        if sc is None or not _has_stats(bench):
            continue
        name = _name(bench)
        stats = bench["stats"]
        if not isinstance(sc, dict) or not sc.get("series") or "x" not in sc:
            raise InvalidInputError(f"{name}: scaling needs at least 'series' and 'x'")
        rss = sc.get("rss_mb")
        helper_rss = sc.get("helper_rss_mb")
        point = ScalingPoint(
            series=str(sc["series"]),
            x=_number(sc["x"], f"{name} scaling x"),
            x_label=str(sc.get("x_label") or "x"),
            mean=_number(stats["mean"], f"{name} mean"),
            stddev=_number(stats.get("stddev", 0.0), f"{name} stddev"),
            rss_mb=None if rss is None else _number(rss, f"{name} scaling rss_mb"),
            name=name,
            rss_label=str(sc.get("rss_label") or "peak RSS"),
            helper_rss_mb=(
                None if helper_rss is None else _number(helper_rss, f"{name} scaling helper_rss_mb")
            ),
        )
        series.setdefault(point.series, []).append(point)
    for points in series.values():
        points.sort(key=lambda p: p.x)
    return series


# --------------------------------------------------------------------------- formatting


def _time_unit(seconds: float) -> tuple[str, float]:
    for label, scale in _UNITS:
        if seconds >= scale:
            return label, scale
    return _UNITS[-1]


def _si(value: float | None, suffix: str = "") -> str:
    """Format a rate with an SI prefix: 1234567 -> '1.23 M'."""
    if value is None:
        return "—"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{suffix}"
    return f"{value:.2f} {suffix}".rstrip()


def _ratio(row: Row) -> str:
    return "—" if row.ratio is None else f"{row.ratio:.2f}×"


def _caption(group: Group) -> str:
    """What the compact headers leave out: the time unit and the ratio's statistic."""
    ratio = (
        f"ratio = {group.stat} / baseline {group.stat} (per element where sizes differ)"
        if group.baseline
        else "no baseline"
    )
    return f"Times in {group.unit[0]}; {ratio}"


def _cells(group: Group) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of one group's table (shared by every renderer)."""
    _, scale = group.unit
    header = ["name", "mean", "median", "stddev", "ops/s", "elements/s", "ratio"]
    body = []
    for r in group.rows:
        body.append(
            [
                r.name + (" (baseline)" if r.baseline else ""),
                f"{r.mean / scale:.3f}",
                f"{r.median / scale:.3f}",
                f"{r.stddev / scale:.3f}",
                _si(r.ops),
                _si(r.throughput),
                _ratio(r),
            ]
        )
    return header, body


def render_markdown(
    groups: Sequence[Group], *, title: str = "Benchmark results", skipped: Sequence[str] = ()
) -> str:
    """The report as markdown: one table per group, numbers right-aligned."""
    out = [f"# {title}", ""]
    for g in groups:
        header, body = _cells(g)
        out.append(f"## {g.name}")
        out.append("")
        out.append(_caption(g) + ".")
        out.append("")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join([":---", *["---:"] * (len(header) - 1)]) + "|")
        out.extend("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body)
        out.append("")
        out.extend(f"> warning: {w}" for w in g.warnings)
        if g.warnings:
            out.append("")
    if skipped:
        out.append("Skipped (no statistics): " + ", ".join(f"`{n}`" for n in skipped))
    return "\n".join(out).rstrip() + "\n"


def render_text(groups: Sequence[Group]) -> str:
    """The report as plain fixed-width text (the fallback without rich)."""
    out = []
    for g in groups:
        header, body = _cells(g)
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        out.append(f"{g.name} ({_caption(g)})")
        for row in [header, *body]:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            out.append("  ".join(cells))
        out.extend(f"warning: {w}" for w in g.warnings)
        out.append("")
    return "\n".join(out)


def _print_tables(groups: Sequence[Group]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render_text(groups))
        return
    console = Console()
    if not console.is_terminal:  # a log file: no reason to squeeze into 80 columns
        console = Console(width=max(console.width, 160))
    for g in groups:
        header, body = _cells(g)
        table = Table(title=f"{g.name} [dim]({_caption(g)})[/dim]", title_justify="left")
        name_width = min(max(len(row[0]) for row in [header, *body]), 48)
        table.add_column(header[0], min_width=name_width, overflow="fold")
        for h in header[1:]:
            table.add_column(h, justify="right", no_wrap=True)
        for row in body:
            table.add_row(*row)
        console.print(table)
        for w in g.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")


# --------------------------------------------------------------------------- charts


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "series"


def plot_scaling(series: str, points: Sequence[ScalingPoint], out_dir: str | Path) -> Path:
    """Draw one scaling series (time and RSS against x) to ``scaling-<series>.png``."""
    out = Path(out_dir) / f"scaling-{_slug(series)}.png"
    scaling_figure(series, points).savefig(out, dpi=110)
    return out


def scaling_figure(series: str, points: Sequence[ScalingPoint]) -> Any:
    """The chart of one scaling series: a matplotlib ``Figure``, with a legend.

    Points without ``rss_mb`` appear on the time curve only.

    Uses matplotlib's object API on the Agg canvas, so it needs no display and
    leaves pyplot's global state alone. When x spans two orders of magnitude
    or more, x and time are drawn log-log (RSS stays linear from zero).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not points:
        raise InvalidInputError(f"scaling series {series!r} has no points")
    xs = [p.x for p in points]
    label, scale = _time_unit(min(p.mean for p in points))
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.errorbar(
        xs,
        [p.mean / scale for p in points],
        yerr=[p.stddev / scale for p in points],
        marker="o",
        color="tab:blue",
        capsize=3,
        label="time per call (mean, ± sd)",
    )
    ax.set_xlabel(points[0].x_label)
    ax.set_ylabel(f"time per call ({label})", color="tab:blue")
    ax.tick_params(axis="y", labelcolor="tab:blue")
    if min(xs) > 0 and max(xs) / min(xs) >= 100 and min(p.mean for p in points) > 0:
        # Log-log: linear scaling is a straight line of slope 1.
        ax.set_xscale("log")
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    rss = [(p.x, p.rss_mb) for p in points if p.rss_mb is not None]
    helper = [(p.x, p.helper_rss_mb) for p in points if p.helper_rss_mb is not None]
    if rss or helper:
        rss_label = points[0].rss_label
        ax2 = ax.twinx()
        for line, color, marker, text in (
            (rss, "tab:red", "s", rss_label),
            (helper, "tab:orange", "^", "helper peak RSS"),
        ):
            if line:
                ax2.plot(
                    [x for x, _ in line],
                    [m for _, m in line],
                    marker=marker,
                    linestyle="--",
                    color=color,
                    label=f"{text} (MB)",
                )
        ax2.set_ylim(bottom=0)
        ax2.set_ylabel(f"{rss_label} (MB)" if not helper else "peak RSS (MB)", color="tab:red")
        ax2.tick_params(axis="y", labelcolor="tab:red")
        more_handles, more_labels = ax2.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, loc="upper left", fontsize="small", framealpha=0.85)
    ax.set_title(f"scaling: {series}")
    return fig


# --------------------------------------------------------------------------- main


def write_report(
    json_path: str | Path,
    *,
    markdown_path: str | Path | None = None,
    charts: bool = True,
    stat: Stat = "mean",
    echo: bool = True,
) -> list[Path]:
    """Build the whole report for one JSON file; return the files written."""
    src = Path(json_path)
    data = load_results(src)
    groups = build_groups(data, stat=stat)
    skipped = skipped_benchmarks(data)
    if echo:
        _print_tables(groups)
        if skipped:
            print("skipped (no statistics): " + ", ".join(skipped))
    md = Path(markdown_path) if markdown_path else src.with_name(MARKDOWN_NAME)
    text = render_markdown(groups, title=f"Benchmark results: {src.name}", skipped=skipped)
    md.write_text(text, "utf-8")
    written = [md]
    if charts:
        written.extend(
            plot_scaling(name, points, src.parent) for name, points in scaling_series(data).items()
        )
    return written


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Summarise a pytest-benchmark --benchmark-json file.",
    )
    p.add_argument("json", type=Path, help="the --benchmark-json output")
    p.add_argument(
        "--markdown", type=Path, help=f"markdown output (default: {MARKDOWN_NAME} next to the JSON)"
    )
    p.add_argument("--no-charts", action="store_true", help="skip the scaling PNGs")
    p.add_argument(
        "--ratio-stat",
        choices=("mean", "median", "min"),
        default="mean",
        help="statistic the baseline ratio compares (default: mean)",
    )
    return p


def main(argv: Iterable[str] | None = None) -> int:
    """Entry point: print the tables, write markdown and charts, return an exit code."""
    args = _parser().parse_args(None if argv is None else list(argv))
    try:
        written = write_report(
            args.json,
            markdown_path=args.markdown,
            charts=not args.no_charts,
            stat=args.ratio_stat,
        )
    except PetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
