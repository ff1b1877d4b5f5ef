"""The source-neutral write path for webhook events: validated `Inbound`
events, written in batches (group commit), on SQLite by a writer process.
"""
