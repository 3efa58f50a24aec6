"""Notifications: signed outbound webhooks to platforms."""
