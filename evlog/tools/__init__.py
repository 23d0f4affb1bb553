"""Tools around evlog rather than parts of it: a local NATS JetStream cluster for
`evlog nats up`, the tests and the benches (nats_cluster.py)."""
