"""Post-call analysis: a text model reads the stored transcript and answers a strict schema."""
