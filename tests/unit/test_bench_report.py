"""Tests for benchmarks/report.py: grouping, baseline ratios, markdown, scaling PNGs.

The synthetic input follows pytest-benchmark 5.x's ``--benchmark-json``
format (top-level ``machine_info``, ``commit_info``, ``benchmarks``,
``datetime``, ``version``; per benchmark ``group`` (null when unset),
``name``, ``fullname``, ``params``, ``param``, ``extra_info``, ``options``,
``stats``). One test also produces a real file with pytest-benchmark, so a
format change upstream shows up here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level dev package, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks.report import (  # noqa: E402 (needs the sys.path entry above)
    UNGROUPED,
    build_groups,
    load_results,
    main,
    plot_scaling,
    render_markdown,
    render_text,
    scaling_series,
    skipped_benchmarks,
)
from pets.errors import InvalidInputError  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bench(
    name: str,
    mean: float,
    *,
    group: str | None,
    extra: dict[str, Any] | None = None,
    median: float | None = None,
    stddev: float = 0.0,
) -> dict[str, Any]:
    """One entry of pytest-benchmark's ``benchmarks`` list (stats in seconds)."""
    return {
        "group": group,
        "name": name,
        "fullname": f"benchmarks/test_x.py::{name}",
        "params": None,
        "param": None,
        "extra_info": extra or {},
        "options": {
            "disable_gc": False,
            "timer": "perf_counter",
            "min_rounds": 5,
            "max_time": 1.0,
            "min_time": 5e-06,
            "precision": None,
            "confidence": None,
            "warmup": False,
        },
        "stats": {
            "min": mean * 0.9,
            "max": mean * 1.2,
            "mean": mean,
            "stddev": stddev,
            "rounds": 10,
            "median": mean if median is None else median,
            "iqr": 0.0,
            "q1": mean,
            "q3": mean,
            "iqr_outliers": 0,
            "stddev_outliers": 0,
            "outliers": "0;0",
            "ld15iqr": mean,
            "hd15iqr": mean,
            "ops": 1.0 / mean,
            "total": mean * 10,
            "data": [mean] * 10,
        },
    }


def _results(benchmarks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "machine_info": {"node": "test", "machine": "x86_64", "python_version": "3.11.7"},
        "commit_info": {"id": "unversioned", "dirty": False, "project": "pets"},
        "benchmarks": benchmarks,
        "datetime": "2030-01-01T00:00:00+00:00",
        "version": "5.3.1",
    }


def _scaling(x: int, rss: float | None) -> dict[str, Any]:
    return {"series": "share vector", "x": x, "x_label": "vector length", "rss_mb": rss}


@pytest.fixture
def results() -> dict[str, Any]:
    return _results(
        [
            _bench("test_prg_aes", 0.002, group="prg", extra={"elements": 1_000_000}),
            _bench(
                "test_prg_chacha",
                0.004,
                group="prg",
                extra={"baseline": True, "elements": 1_000_000},
                median=0.005,
            ),
            _bench("test_prg_numpy", 0.010, group="prg", stddev=0.001),
            _bench("test_share[1000]", 1e-4, group="share", extra={"scaling": _scaling(1000, 50)}),
            _bench(
                "test_share[100000]",
                1e-2,
                group="share",
                extra={"scaling": _scaling(100_000, 90), "baseline": True},
            ),
            _bench(
                "test_share[10000]", 1e-3, group="share", extra={"scaling": _scaling(10_000, 60)}
            ),
            _bench("test_misc", 3e-7, group=None),
        ]
    )


@pytest.fixture
def json_file(tmp_path: Path, results: dict[str, Any]) -> Path:
    path = tmp_path / "latest.json"
    path.write_text(json.dumps(results))
    return path


def test_ratios_to_baseline(results: dict[str, Any]) -> None:
    groups = {g.name: g for g in build_groups(results)}
    assert list(groups) == ["prg", "share", UNGROUPED]
    prg = groups["prg"]
    assert prg.baseline == "test_prg_chacha"
    # Baseline first, then fastest first.
    assert [r.name for r in prg.rows] == ["test_prg_chacha", "test_prg_aes", "test_prg_numpy"]
    ratios = {r.name: r.ratio for r in prg.rows}
    assert ratios == pytest.approx(
        {"test_prg_chacha": 1.0, "test_prg_aes": 0.5, "test_prg_numpy": 2.5}
    )
    share = {r.name: r.ratio for r in groups["share"].rows}
    assert share == pytest.approx(
        {"test_share[100000]": 1.0, "test_share[10000]": 0.1, "test_share[1000]": 0.01}
    )
    assert groups[UNGROUPED].baseline is None
    assert groups[UNGROUPED].rows[0].ratio is None


def test_ratio_statistic_is_selectable(results: dict[str, Any]) -> None:
    prg = build_groups(results, stat="median")[0]
    assert {r.name: r.ratio for r in prg.rows}["test_prg_aes"] == pytest.approx(0.002 / 0.005)
    with pytest.raises(InvalidInputError):
        build_groups(results, stat="max")  # type: ignore[arg-type]


def test_throughput_and_ops(results: dict[str, Any]) -> None:
    rows = {r.name: r for g in build_groups(results) for r in g.rows}
    assert rows["test_prg_aes"].throughput == pytest.approx(5e8)
    assert rows["test_prg_chacha"].throughput == pytest.approx(2.5e8)
    assert rows["test_prg_numpy"].throughput is None
    assert rows["test_prg_aes"].ops == pytest.approx(500)


def test_several_baselines_warn(results: dict[str, Any]) -> None:
    results["benchmarks"][0]["extra_info"]["baseline"] = True  # aes too
    prg = build_groups(results)[0]
    assert prg.baseline == "test_prg_aes"  # the first one in file order
    assert any("several baselines" in w for w in prg.warnings)
    assert sum(r.baseline for r in prg.rows) == 1


def test_markdown_table(results: dict[str, Any]) -> None:
    md = render_markdown(build_groups(results))
    assert "## prg" in md
    assert "Times in ms; ratio = mean / baseline mean (per element where sizes differ)." in md
    assert "| name | mean | median | stddev | ops/s | elements/s | ratio |" in md
    assert (
        "| test_prg_chacha (baseline) | 4.000 | 5.000 | 0.000 | 250.00 | 250.00 M | 1.00× |" in md
    )
    assert "| test_prg_aes | 2.000 | 2.000 | 0.000 | 500.00 | 500.00 M | 0.50× |" in md
    assert "| test_prg_numpy | 10.000 | 10.000 | 1.000 | 100.00 | — | 2.50× |" in md
    assert "## (ungrouped)\n\nTimes in ns; no baseline." in md
    assert "| test_misc | 300.000 |" in md


def test_text_fallback(results: dict[str, Any]) -> None:
    text = render_text(build_groups(results))
    header = "prg (Times in ms; ratio = mean / baseline mean (per element where sizes differ))"
    assert header in text
    assert "0.50×" in text


def test_scaling_series_sorted_by_x(results: dict[str, Any]) -> None:
    series = scaling_series(results)
    assert list(series) == ["share vector"]
    pts = series["share vector"]
    assert [p.x for p in pts] == [1000, 10_000, 100_000]
    assert [p.rss_mb for p in pts] == [50, 60, 90]
    assert pts[0].x_label == "vector length"


def test_plot_without_rss(tmp_path: Path, results: dict[str, Any]) -> None:
    for b in results["benchmarks"]:
        if "scaling" in b["extra_info"]:
            b["extra_info"]["scaling"]["rss_mb"] = None
    out = plot_scaling("share vector", scaling_series(results)["share vector"], tmp_path)
    assert out == tmp_path / "scaling-share-vector.png"
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_main_writes_markdown_and_png(json_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(json_file)]) == 0
    md = json_file.parent / "results.md"
    png = json_file.parent / "scaling-share-vector.png"
    out = capsys.readouterr().out
    assert f"wrote {md}" in out
    assert f"wrote {png}" in out
    assert "test_prg_chacha (baseline)" in out  # the terminal table
    assert "0.50×" in md.read_text(encoding="utf-8")
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert png.stat().st_size > 5000


def test_main_options(json_file: Path, tmp_path: Path) -> None:
    md = tmp_path / "other.md"
    assert main([str(json_file), "--markdown", str(md), "--no-charts", "--ratio-stat", "min"]) == 0
    assert "ratio = min / baseline min" in md.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.png"))


def test_skipped_benchmarks_are_reported(tmp_path: Path, results: dict[str, Any]) -> None:
    broken = _bench("test_broken", 1.0, group="prg")
    del broken["stats"]
    results["benchmarks"].append(broken)
    assert skipped_benchmarks(results) == ["test_broken"]
    assert "test_broken" not in {r.name for g in build_groups(results) for r in g.rows}
    assert "Skipped (no statistics): `test_broken`" in render_markdown(
        build_groups(results), skipped=skipped_benchmarks(results)
    )


@pytest.mark.parametrize("content", ["not json", "[]", '{"benchmarks": 3}'])
def test_bad_input(tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidInputError):
        load_results(path)
    assert main([str(path)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.json")]) == 2


def test_bad_scaling_entry(results: dict[str, Any]) -> None:
    results["benchmarks"][0]["extra_info"]["scaling"] = {"x": 1}
    with pytest.raises(InvalidInputError, match="series"):
        scaling_series(results)


def test_real_pytest_benchmark_json(tmp_path: Path) -> None:
    """Run a tiny real suite with --benchmark-json and report on its output."""
    (tmp_path / "test_tiny.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('n', [100, 1000])\n"
        "def test_sum(benchmark, n):\n"
        "    benchmark.group = 'sum'\n"
        "    benchmark.extra_info['elements'] = n\n"
        "    benchmark.extra_info['baseline'] = n == 100\n"
        "    benchmark.extra_info['scaling'] = {\n"
        "        'series': 'sum', 'x': n, 'x_label': 'n', 'rss_mb': 10.0}\n"
        "    benchmark(sum, range(n))\n"
    )
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path / "test_tiny.py"),
            f"--benchmark-json={out}",
            "--benchmark-max-time=0.01",
            "--benchmark-min-rounds=3",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = load_results(out)
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(data)
    (group,) = build_groups(data)
    assert group.name == "sum"
    assert group.baseline == "test_sum[100]"
    assert group.rows[0].ratio == 1.0
    assert all(r.throughput and r.throughput > 0 for r in group.rows)
    report = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", str(out)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert (tmp_path / "results.md").is_file()
    assert (tmp_path / "scaling-sum.png").read_bytes().startswith(PNG_MAGIC)


def test_duplicate_names_use_full_node_ids() -> None:
    a = _bench("test_add", 1e-3, group="add", extra={"baseline": True})
    b = _bench("test_add", 2e-3, group="add")
    b["fullname"] = "benchmarks/test_y.py::test_add"
    (group,) = build_groups(_results([a, b]))
    assert [r.name for r in group.rows] == [
        "benchmarks/test_x.py::test_add",
        "benchmarks/test_y.py::test_add",
    ]
    assert [r.ratio for r in group.rows] == pytest.approx([1.0, 2.0])


def test_ratio_is_per_element_when_sizes_differ() -> None:
    from benchmarks.report import Row, _ratio_to

    base = Row("g", "naive", "naive", 1.0, 1.0, 1.0, 0.0, 1.0, 1, elements=100)
    fast = Row("g", "packed", "packed", 2.0, 2.0, 2.0, 0.0, 0.5, 1, elements=10_000)
    same = Row("g", "other", "other", 2.0, 2.0, 2.0, 0.0, 0.5, 1, elements=100)
    assert _ratio_to(fast, base, "mean") == pytest.approx(0.02)  # 50x faster per value
    assert _ratio_to(same, base, "mean") == pytest.approx(2.0)


def test_scaling_chart_has_a_legend_naming_whose_memory(results: dict[str, Any]) -> None:
    """Issue 15, item 23: every line is named, and memory says it is the leader's peak RSS."""
    from benchmarks.report import scaling_figure

    for b in results["benchmarks"]:
        sc = b["extra_info"].get("scaling")
        if sc is not None:
            sc["rss_label"] = "leader peak RSS"
            sc["helper_rss_mb"] = sc["rss_mb"] / 2
    fig = scaling_figure("share vector", scaling_series(results)["share vector"])
    legend = fig.axes[0].get_legend()
    assert legend is not None
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [
        "time per call (mean, ± sd)",
        "leader peak RSS (MB)",
        "helper peak RSS (MB)",
    ]
