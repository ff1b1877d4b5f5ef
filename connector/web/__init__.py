"""HTTP: the routes, middleware, request bodies and JSON errors, the server's
connection limits.
"""
