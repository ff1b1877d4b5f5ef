"""Tests of connector.ingest: the webhook write path, its door and its writer process."""
