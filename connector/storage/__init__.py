"""The database: engine and dialect helpers, tables, migrations, transactions
with after-commit effects, multi-row statements for batch writers, and SQLite-only
machinery beside the engine (`sqlite`).
"""
