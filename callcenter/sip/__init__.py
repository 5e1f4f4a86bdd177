"""SIP facts: URIs, the INVITE's addresses and headers, and what a trunk needs."""
