"""The log in one SQLite file in WAL mode: the backend `EventLog` (log.py) over its one writer
thread (writer.py), schema (schema.py), packed dead letters (deadletters.py), WAL checkpoints
(checkpointer.py) and the WAL index reader that tells followers of new commits (walindex.py)."""
