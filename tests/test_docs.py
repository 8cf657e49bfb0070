"""docs/sql-api.md is generated from sql/ and must not go stale."""

from __future__ import annotations

from dsreg_db import apidoc
from dsreg_db.sqlobjects import SQL_DIR, is_public, load


def test_sql_api_reference_is_up_to_date() -> None:
    assert apidoc.DOC.read_text() == apidoc.render(), "docs/sql-api.md is stale: run `dsreg docs`"


def test_reference_lists_every_public_procedure_with_its_errors() -> None:
    text = apidoc.render()
    public = [o.name for o in load(SQL_DIR) if is_public(o)]
    assert len(public) == 14
    for name in public:
        assert f"## `{name}`" in text
    # errors raised deep in helpers are found: a heartbeat can fail with every session and path error
    section = text.split("## `dsreg_heartbeat`")[1].split("## ")[0]
    assert "`45001`" in section and "`45002`" in section and "`45003`" in section and "`45005`" in section
