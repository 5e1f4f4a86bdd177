"""``python -m callcenter``: the same as the ``callcenter`` console script."""

from callcenter.cli import main

main()
