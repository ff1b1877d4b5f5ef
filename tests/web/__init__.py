"""Tests of connector.web: the HTTP API, its description, bodies, errors, limits."""
