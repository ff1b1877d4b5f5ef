"""Tests of connector.domain: tickets, roles and visibility."""
