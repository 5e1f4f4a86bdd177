"""Example tool modules for tests of :func:`callcenter.tools.load_tools`, one case per module."""
