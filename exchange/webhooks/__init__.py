"""Outbound webhooks: organizations' endpoints, signed deliveries of outbox events, retries."""
