"""The ``callcenter`` command line, one module per command group."""
