"""The handover domain: tickets and their state machine, transcripts, the outbox.

Knows nothing of HTTP.
"""
