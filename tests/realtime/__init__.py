"""Tests of connector.realtime: the live stream over /ws."""
