"""pets: privacy-enhancing computation.

The core package is pure: encoding, PRG, secret sharing, Paillier packing,
query evaluation and zero-knowledge proofs, with no sockets, files, clocks or
logging set-up. The gRPC servers live in :mod:`pets.server`, the data-holder
node and analyst library in :mod:`pets.client`.
"""

__version__ = "0.1.0"
