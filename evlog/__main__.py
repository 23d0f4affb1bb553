"""`python -m evlog` runs the CLI."""

from .cli import main

main()
