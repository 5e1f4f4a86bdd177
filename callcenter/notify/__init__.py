"""Notifications: signed webhooks to the company's systems, from a durable outbox in the store."""
