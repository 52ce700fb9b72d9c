"""Process plumbing shared by the servers, the node and the tools.

Tier ``runtime`` of the core (see :mod:`pets` and docs/ARCHITECTURE.md):

* :mod:`pets.runtime.offload`: run CPU-heavy work off the asyncio loop when it is large;
* :mod:`pets.runtime.jsonlog`: one JSON object per log record;
* :mod:`pets.runtime.tomlconfig`: reading and checking TOML configuration files;
* :mod:`pets.runtime.atomicfile`: the one writer of key files (atomic, 0600 from the start);
* :mod:`pets.runtime.backoff`: the one retry policy (exponential, injected clock).
"""
