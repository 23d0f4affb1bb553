"""The event log on a NATS JetStream stream (`pip install evlog[nats]`): the same `LogStore` as
the SQLite file, for producers on many hosts and a replicated log (docs/scale-out.md)."""
