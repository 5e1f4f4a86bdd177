"""Example tool modules for tests of :func:`callcenter.tools.registry.load_tools`, one a case."""
