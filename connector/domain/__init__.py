"""The handover domain: tickets and their state machine, transcripts, the outbox; who
may see what (`roles`), the live stream's frames (`events`), refusals (`errors`) and
what the console reads (`reports`).

Knows nothing of HTTP.
"""
