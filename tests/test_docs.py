"""docs/sql-api.md is generated from sql/ and must not go stale."""

from __future__ import annotations

import json

from dsreg_db.schema import apidoc
from dsreg_db.schema.sqlobjects import SQL_DIR, is_public, load
from dsreg_db.testing import benchdoc


def test_sql_api_reference_is_up_to_date() -> None:
    assert apidoc.DOC.read_text() == apidoc.render(), "docs/sql-api.md is stale: run `dsreg docs`"


def test_performance_page_is_the_bench_report() -> None:
    """docs/performance.md's figures come from docs/bench.json, never typed in by hand."""
    assert benchdoc.PAGE.read_text() == benchdoc.render_file(), "docs/performance.md is stale: run `dsreg docs`"
    report = json.loads(benchdoc.REPORT.read_text())
    page = benchdoc.PAGE.read_text()
    raw = next(r for r in report["results"] if r["workload"] == "raw_update")
    assert f"{raw['ops_per_s']:.0f} ops/s" in page
    assert f"{report['ratios']['hb_change/raw_update']:.2f} of raw" in page
    readme = benchdoc.README.read_text()
    assert benchdoc.readme_with_summary(readme, report) == readme, "README's bench summary is stale: run `dsreg docs`"
    assert f"{report['kill_removed_s']:.2f} s" in readme


def test_reference_lists_every_public_procedure_with_its_errors() -> None:
    text = apidoc.render()
    public = [o.name for o in load(SQL_DIR) if is_public(o)]
    assert len(public) == 19
    for name in public:
        assert f"## `{name}`" in text
    # errors raised deep in helpers are found: a heartbeat can fail with every session and path error
    section = text.split("## `dsreg_heartbeat`")[1].split("## ")[0]
    assert "`45001`" in section and "`45002`" in section and "`45003`" in section and "`45005`" in section
