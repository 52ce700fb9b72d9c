"""The aggregation servers (installed as ``pets.server``): the leader and the helpers.

* :mod:`pets.server.app`: one server process (TLS, health, reflection, signals);
* :mod:`pets.server.leader`: the leader, one module per job;
* :mod:`pets.server.helper`: a helper;
* :mod:`pets.server.store`: durable state behind one async interface (SQLite by default);
* :mod:`pets.server.peers`: the leader's links to its helpers;
* :mod:`pets.server.rpc`: errors to gRPC status codes, callers to peers;
* :mod:`pets.server.query_state`: the query states, named once;
* :mod:`pets.server.config`, :mod:`pets.server.credentials`: configuration and the
  analysts' credential policy.

What differs between aggregation protocols comes from :mod:`pets.protocols`. This
package imports the core, never :mod:`pets.client` (docs/ARCHITECTURE.md).
"""
