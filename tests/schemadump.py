"""A canonical dump of one schema from information_schema, for comparing migrations."""

from __future__ import annotations

import re
from typing import Any

import pymysql

from tests.sqlcall import query


def _norm(text: str | None) -> str:
    """Bodies without `-- ` comments (the mysql/mariadb clients strip them from scripts), whitespace folded."""
    without = re.sub(r"--\s[^\n]*", "", text or "")
    return re.sub(r"\s+", " ", without).strip()


def dump(conn: pymysql.Connection, schema: str) -> dict[str, Any]:
    return {
        "columns": query(
            conn,
            """
            SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE,
                   COLUMN_DEFAULT, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA
            FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s
              AND TABLE_NAME NOT IN ('dsreg_alembic_version', 'dsreg_migration_lock')
            ORDER BY TABLE_NAME, ORDINAL_POSITION""",
            schema,
        ),
        "indexes": query(
            conn,
            """
            SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE
            FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s
              AND TABLE_NAME NOT IN ('dsreg_alembic_version', 'dsreg_migration_lock')
            ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX""",
            schema,
        ),
        "routines": [
            (name, kind, _norm(body), security, mode)
            for name, kind, body, security, mode in query(
                conn,
                """
                SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION, SECURITY_TYPE, SQL_MODE
                FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s ORDER BY ROUTINE_NAME""",
                schema,
            )
        ],
        "parameters": query(
            conn,
            """
            SELECT SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER
            FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = %s
            ORDER BY SPECIFIC_NAME, ORDINAL_POSITION""",
            schema,
        ),
        "events": [
            (name, _norm(body), value, field, status)
            for name, body, value, field, status in query(
                conn,
                """
                SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STATUS
                FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s ORDER BY EVENT_NAME""",
                schema,
            )
        ],
        "rows": {
            table: query(conn, f"SELECT * FROM `{schema}`.`{table}`")
            for table in ("dsreg_setting", "dsreg_counter")
            if query(
                conn,
                "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                schema,
                table,
            )
        },
    }


def is_empty(d: dict[str, Any]) -> bool:
    return not any(d[k] for k in ("columns", "indexes", "routines", "parameters", "events", "rows"))
