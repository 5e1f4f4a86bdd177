"""The TOML configuration: reading, validation and the frozen values it becomes."""
