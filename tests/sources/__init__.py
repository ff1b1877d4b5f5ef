"""Tests of connector.sources: the bot platforms and their webhooks."""
