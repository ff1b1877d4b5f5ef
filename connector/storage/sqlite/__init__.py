"""SQLite-only machinery that runs beside the engine (`storage.db` configures the
connections themselves)."""
