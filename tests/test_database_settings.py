"""How the service talks to PostgreSQL: parameters bound by the server, repeated statements
prepared (``DB_PREPARED_STATEMENTS``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def _database_options(env: dict[str, str]) -> dict:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "DB_"))}
    script = ("import django, json; django.setup(); from django.conf import settings; "
              "print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))")
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True, text=True,
        env={**base, "DJANGO_SETTINGS_MODULE": "pos.settings", "DJANGO_DEBUG": "1", **env},
        timeout=60,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_postgresql_statements_are_prepared_unless_turned_off():
    url = {"DATABASE_URL": "postgres://x@127.0.0.1/x"}
    assert _database_options(url) == {"server_side_binding": True, "prepare_threshold": 5}
    assert _database_options({**url, "DB_PREPARED_STATEMENTS": "false"}) == {}
    assert "server_side_binding" not in _database_options({})  # embedded SQLite


@pytest.mark.django_db
def test_a_statement_run_again_and_again_is_prepared_once():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    with connection.cursor() as cursor:
        for n in range(6):
            cursor.execute("SELECT %s::int + 1 AS prepared_probe", [n])
            assert cursor.fetchone() == (n + 1,)
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%prepared_probe%"],
        )
        assert cursor.fetchone() == (1,)
