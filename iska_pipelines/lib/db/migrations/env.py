"""Alembic environment: migrations run on the connection ISKA hands over (see database.py)."""

from alembic import context

from iska_pipelines.lib.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI use: build an engine from the URL in the config
    from iska_pipelines.lib.db.engine import create_iska_engine

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "alembic.ini names no sqlalchemy.url"
    engine = create_iska_engine(url)
    connection = engine.connect()

context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite"
)
with context.begin_transaction():
    context.run_migrations()
