"""Alembic migrations (``versions/``), their environment and the index of every model module."""
