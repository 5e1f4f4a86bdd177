"""A module importing a package that is not installed."""

from __future__ import annotations

import callcenter_test_no_such_package  # noqa: F401
