"""The projections evlog ships: events, messages, latency."""
