"""Alembic: one linear history of the schema of every package (installed with the code for `flask db upgrade`)."""
