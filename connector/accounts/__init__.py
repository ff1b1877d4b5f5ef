"""Who may do what: staff accounts, sessions and sign-in throttling,
integrations (bot endpoints) and their keys, hashing of secrets.
"""
