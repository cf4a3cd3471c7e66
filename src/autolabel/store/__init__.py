"""Storage: tables, database access and migrations."""

from autolabel.store.database import Database, open_database

__all__ = ["Database", "open_database"]
