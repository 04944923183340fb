"""The servers under test, each a uvicorn application configured by environment variables.

* :mod:`bench.apps.optimist_app`: a versioned table of items on the library (FastAPI);
* :mod:`bench.apps.optimist_starlette_app`: the same endpoints on plain Starlette;
* :mod:`bench.apps.raw_app`: the same compare-and-set by hand, on the raw driver;
* :mod:`bench.apps.seed_app`: seed 003's fetch, compare in Python, commit (SQLAlchemy ORM).

All of them serve the same table (``items``: ``id``, ``counter``, ``text`` and the version
columns of :func:`optimist.sqlalchemy.versioned_table`), which the harness creates and
fills, and the same document (``{"id", "counter", "text"}``). ``BENCH_DATABASE_URL``
names the database in SQLAlchemy's form; ``BENCH_SECRET`` signs the optimist apps' cursors.
"""
