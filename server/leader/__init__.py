"""The leader: accepts queries, collects contributions, fixes the contributor set.

One module per job (docs/ARCHITECTURE.md, "The leader"):

* :mod:`~pets.server.leader.servicer`: the thin gRPC servicer;
* :mod:`~pets.server.leader.admission`: the pure checks of a submitted query;
* :mod:`~pets.server.leader.intake`: one contribution, header to acknowledgement;
* :mod:`~pets.server.leader.batching`: the queues, the prepare loop and the
  group commit;
* :mod:`~pets.server.leader.prepare`: the helpers' check of a batch (Prepare),
  with Prio3's verification;
* :mod:`~pets.server.leader.lifecycle`: open, deadline, close, finalise, resume;
* :mod:`~pets.server.leader.announcements`: announcements to holders, status
  to analysts;
* :mod:`~pets.server.leader.state`: what they share.

What differs between protocols comes from the query's protocol
(:func:`pets.protocols.lookup`); the store is any
:class:`pets.server.store.Store`.
"""

from pets.server.leader.servicer import Leader

__all__ = ["Leader"]
