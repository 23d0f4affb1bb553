"""The evlog command line: wires adapters, the event log and the projector together."""

__version__ = "0.1.0"
