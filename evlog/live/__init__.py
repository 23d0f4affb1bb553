"""What a long-running evlog process (`project --follow`, `watch`) offers besides projecting:
the file watcher (watch.py), the query socket other processes use while DuckDB's one writer is
busy (server.py), live latency metrics fed by the follower's batches and served as Prometheus
text (metrics.py, histogram.py), and the wiring of all of them (exposure.py)."""
