"""Tests of connector.delivery and connector.channels: replies out."""
