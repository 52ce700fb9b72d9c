"""A helper: checks and opens holders' sealed seeds, and sums those the leader fixed.

A helper never sees a vector, and no holder connects to it: each holder seals
its seed to this helper's X25519 seal key and signs it (:mod:`pets.seal`),
and sends it with its masked vector to the leader, which cannot open it.

* **Prepare**, before the leader commits a batch of contributions: for each
  contributor the helper checks its certificate against the project CA (it
  must name that holder: the leader cannot invent contributors, nor list one
  holder under several names) and the holder's signature, and opens the
  seed. It keeps the seeds it accepts, in memory, and names those it
  refuses; the leader commits only what every helper accepted, so a
  contribution the leader acknowledged is complete everywhere.
* **Finalize**, once the query closed: the leader streams the fixed
  contributor set with each contributor's certificate and sealed seed (from
  its store). Seeds accepted earlier are used as they are; any other
  (say, after this helper restarted) is checked and opened now. The helper
  expands and sums them in place (the sum and one scratch vector, whatever
  the number of holders), stores the result and releases it only to the
  query's analyst, only with at least ``min_holders`` contributors.

Per open query the helper holds the accepted seeds (about 300 bytes per
contributor), nothing on disk. The seal key is generated on first start and
kept in the helper's database; the helper vouches for it with its
certificate key (:class:`pets.v1.HelperKey`), so the leader, which relays it
to holders, cannot swap in a key of its own.

The checks themselves are the query protocol's helper half
(:meth:`pets.protocols.AggregationProtocol.helper_checker`; for additive
queries :class:`pets.protocols.additive.SeedOpener`). Around them, one module
per job:

* :mod:`~pets.server.helper.servicer`: the thin gRPC servicer;
* :mod:`~pets.server.helper.queries`: the per-query state, registration,
  Prepare, finalisation and abort;
* :mod:`~pets.server.helper.streams`: reading a Prepare or Finalize stream;
* :mod:`~pets.server.helper.seal_key`: the seal key and the statement vouching for it.
"""

from pets.server.helper.servicer import Helper

__all__ = ["Helper"]
