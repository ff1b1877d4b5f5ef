"""Tests of connector.accounts: sign-in, sessions, throttling."""
