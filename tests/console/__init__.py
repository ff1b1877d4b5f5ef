"""Browser tests of the console (agent_ui/) in Debian's Chromium."""
