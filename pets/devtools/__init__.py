"""Developer tools: the demo, the local cluster, synthetic data and the quick benchmarks.

These are harnesses, not library code: they start servers and nodes, so they
may import :mod:`pets.server` and :mod:`pets.client`, and nothing in the core,
the servers or the clients imports them (import-linter contracts, ``make lint``;
docs/ARCHITECTURE.md, "Package layout and layers").

* :mod:`pets.devtools.localcluster`: a leader, helpers and holder nodes on loopback;
* :mod:`pets.devtools.demo`: ``pets demo``, every result checked against plaintext;
* :mod:`pets.devtools.datagen` (small, the demo's) and :mod:`pets.devtools.gen_fast`
  (chunked, columnar, 10^7 rows per holder): deterministic synthetic datasets
  (``pets gen-data``);
* :mod:`pets.devtools.bench`: ``pets bench --quick``; one suite per module
  ``bench_<name>`` with ``quick() -> dict[str, float]``, listed in
  :data:`pets.devtools.bench.SUITES`.
"""
