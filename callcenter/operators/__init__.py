"""The operator surface: JSON API, web console, auth, audit, commands and streams."""
