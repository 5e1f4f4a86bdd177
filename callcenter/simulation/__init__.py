"""Scenario files, their checks, timelines, ``callcenter simulate`` and the demo."""
