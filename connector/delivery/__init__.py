"""Replies out: the worker that sends queued replies, with leases and retries.
"""
