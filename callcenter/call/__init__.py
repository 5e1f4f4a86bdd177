"""One live call: the pure per-call policy and its asyncio executor over the sideband."""
