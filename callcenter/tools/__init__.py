"""Company tools: ``@callcenter.tool``, their schemas, running them, the example tools."""
