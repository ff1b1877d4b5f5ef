"""The database: engine and dialect helpers, tables, migrations, transactions
with after-commit effects, and multi-row statements for batch writers.
"""
