"""The migrations build exactly the schema the models describe, on the database under test."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from exchange.db import db
from exchange.kernel import MIGRATIONS_DIR


def _env_include_object() -> Any:
    """env.py's own `include_object` (importing env.py would run a migration): one filter, not two."""
    source = (Path(MIGRATIONS_DIR) / "env.py").read_text()
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "include_object")
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "env.py", "exec"), namespace)  # noqa: S102
    return namespace["include_object"]


def _diff(app: Any) -> list:
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_object": _env_include_object(),
        })
        return compare_metadata(context, db.metadata)


def test_models_and_migrations_agree(app):
    assert _diff(app) == []


def test_the_filter_only_hides_full_text_tables():
    include = _env_include_object()
    assert include(None, "organizations", "table", True, None)
    assert not include(None, "products_fts", "table", True, None)
    assert not include(None, "products_fts_data", "table", True, None)


def test_one_head_and_every_model_table_is_migrated(app):
    with app.app_context():
        script = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config())
        assert len(script.get_heads()) == 1
        tables = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables


def test_downgrade_to_base_and_upgrade_again(make_app, tmp_path):
    scratch = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'scratch.db'}")
    with scratch.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())
