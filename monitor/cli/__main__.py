"""`python -m monitor.cli`: the same as the `flarewatch` console script."""
from monitor.cli import main

main()
