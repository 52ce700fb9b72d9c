"""Developer tools: the demo, the local cluster, synthetic data and the quick benchmarks.

These are harnesses, not library code: they start servers and nodes, so they
may import :mod:`pets.server` and :mod:`pets.client`, and nothing in the core
imports them (an import-linter contract, ``make lint``).

* :mod:`pets.devtools.localcluster`: a leader, helpers and holders on loopback;
* :mod:`pets.devtools.demo`: ``pets demo``, checked against plaintext;
* :mod:`pets.devtools.datagen`: deterministic synthetic datasets (``pets gen-data``);
* :mod:`pets.devtools.bench` and ``bench_*``: ``pets bench --quick``.
"""
