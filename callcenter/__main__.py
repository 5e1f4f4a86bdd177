"""``python -m callcenter``: the same as the ``callcenter`` console script."""

from callcenter.cli.main import main

main()
