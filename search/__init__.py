"""Midashi's engine: corpus → analysis → index → search, used by the CLI and the web front end."""
