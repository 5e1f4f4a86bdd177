"""The path of a ringing call: verified webhook, routing decision, the accept body."""
