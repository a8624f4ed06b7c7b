"""Episodes from agents that are not ours: trace files imported, spans collected live, conversations proxied."""
