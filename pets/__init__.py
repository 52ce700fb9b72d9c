"""pets: privacy-enhancing computation.

The package is tiered; a module imports only from its own tier or the tiers
below it, and the core never imports the servers, the clients, the tools or
the command line (import-linter contracts in ``pyproject.toml``, run by
``make lint``; docs/ARCHITECTURE.md explains each tier):

==========================  =====================================================
tier (top to bottom)        what it holds
==========================  =====================================================
``pets.cli``                the ``pets`` command: parses arguments, calls library code
``pets.devtools``           harnesses: demo, local cluster, synthetic data, quick benchmarks
``pets.server``             gRPC leader and helper servers (source folder ``server/``)
``pets.client``             data-holder node and analyst client (source folder ``client/``)
--------------------------  -----------------------------------------------------
``pets.query`` ...          protocols and their maths: query model and plans,
``pets.paillier``,          Paillier packing and aggregation, zero-knowledge proofs
``pets.zk``                 and credentials
``pets.seal``               helper seeds sealed to a helper and signed by a holder (HPKE)
``pets.transport``          wire codec, gRPC status mapping, peer identity from TLS
``pets.identity``           CA and certificates, the certificate directory, signing
``pets.runtime``            offload, JSON logging, TOML reading
``pets.sharing``,           additive secret sharing over Z_2^64, the seed PRG and
``pets.prg``,               fixed-point encoding
``pets.encoding``
``pets.errors``, ``pets.v1``  the error tree and the generated protobuf code
==========================  =====================================================

Everything below the line is the *core*: no sockets are opened and no logging
is set up there; files are touched only by :mod:`pets.identity.files`.
"""

__version__ = "0.1.0"
