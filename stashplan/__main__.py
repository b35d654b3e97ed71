"""`python -m stashplan` runs the CLI."""

from stashplan.cli import main

main()
