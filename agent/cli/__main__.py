"""`python -m agent.cli`: the same CLI as the `guild-agent` script."""

from agent.cli import main

main()
