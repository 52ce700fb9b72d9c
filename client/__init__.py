"""pets.client: the data-holder node and the analyst client library.

Never imports :mod:`pets.server`; both sides share only :mod:`pets` (the
core) and the generated wire code in :mod:`pets.v1`.
"""

from pets.client.analyst import AnalystClient, Outcome, Submitted
from pets.client.config import load_analyst_config, load_node_config

__all__ = ["AnalystClient", "Outcome", "Submitted", "load_analyst_config", "load_node_config"]
