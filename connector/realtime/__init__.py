"""The live stream: stored events and cursors, the event bus between
processes, the hub that forwards to consoles, and what one console is sent.
"""
