"""pets: privacy-enhancing computation.

The package is tiered. A module imports only from its own tier or the tiers
below it, and the core never imports the servers, the clients, the tools or
the command line: import-linter contracts in ``pyproject.toml``, run by
``make lint``. docs/ARCHITECTURE.md ("Package layout and layers") explains
each tier. Top to bottom:

* ``pets.cli``: the ``pets`` command, one module per command (``pets.__main__``
  runs it);
* ``pets.devtools``: harnesses (the demo, the local cluster, synthetic data,
  the quick benchmark suites);
* ``pets.server`` | ``pets.client``: the gRPC leader and helper (source folder
  ``server/``); the data-holder node and the analyst client (``client/``);

and the **core**, which serves nothing and sets up no logging (its one outgoing
connection is a holder's read-only PostgreSQL source, ``pets.sources.sql``):

* ``pets.protocols``: one module per aggregation protocol behind one interface;
* ``pets.vdaf``, ``pets.dp``, ``pets.sources``, ``pets.linkage``: Prio3,
  differential privacy, holder data sources, private record linkage;
* ``pets.query`` | ``pets.paillier`` | ``pets.zk``: the query model, plans and
  decoding; Paillier packing and aggregation; zero-knowledge proofs and credentials;
* ``pets.seal``: helper seeds sealed to a helper (HPKE) and signed by a holder;
* ``pets.transport``: the wire codec, the gRPC status mapping, peer identity;
* ``pets.identity``: the CA and certificates, the certificate directory, signing;
* ``pets.runtime``: offload, JSON logging, TOML, atomic secret files, backoff;
* ``pets.sharing``, ``pets.prg``, ``pets.encoding``, ``pets.lengthprefix``: additive
  shares over Z_2^64, the seed PRG, fixed-point encoding, length-prefix framing;
* ``pets.errors``, ``pets.v1``: the error tree and the generated protobuf code.
"""

__version__ = "0.1.0"
