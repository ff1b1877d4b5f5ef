"""Tests of connector.storage: the database, batch statements, PostgreSQL."""
