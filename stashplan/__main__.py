"""`python -m stashplan` runs the CLI."""

from stashplan.entry import main

main()
