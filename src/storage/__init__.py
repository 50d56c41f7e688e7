"""State shared by workers and instances (stored responses, saved chats): one database.

``src.storage.database.Database`` opens it (a SQLite file under ``--db_root`` by default,
``--database_url`` for PostgreSQL shared by many instances); each kind of record keeps its
tables and queries in a module of its own here, on the one declarative ``Base``.
"""
