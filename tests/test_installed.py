"""The wheel, installed as a user installs it: a fresh venv outside the checkout, run from an empty directory.

The checkout is used only to build the wheel (or ``$DSREG_TEST_WHEEL`` names one built
elsewhere); everything after that runs the installed ``dsreg`` with a clean environment,
so a file the wheel lacks fails here, not on a user's machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ServerInfo

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``bin`` directory of a fresh venv with only the wheel (and its dependencies) installed."""
    base = tmp_path_factory.mktemp("installed")
    wheel = os.environ.get("DSREG_TEST_WHEEL")
    if not wheel:
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(REPO)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        (found,) = (base / "dist").glob("dsreg_db-*.whl")
        wheel = str(found)
    subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True, timeout=120)
    pip = [str(base / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, wheel], check=True, capture_output=True, timeout=600)
    yield base / "venv" / "bin"
    shutil.rmtree(base, ignore_errors=True)


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH, no DSREG_* from the test run: what a user's shell has."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("DSREG")}


def _run(bin_dir: Path, cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env=_clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_the_wheel_carries_sql_migrations_and_alembic_ini(installed: Path) -> None:
    wheel_files: Counter[str] = Counter()
    site = installed.parent / "lib"
    (package,) = site.glob("python3*/site-packages/dsreg_db")
    for path in package.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            wheel_files[path.relative_to(package).parts[0] if len(path.relative_to(package).parts) > 1 else "."] += 1
    repo_sql = len(list((REPO / "sql").glob("*/*.sql")))
    # the frozen definitions and the tombstones of the routines a revision drops (they must ship too)
    repo_frozen = len(list((REPO / "migrations" / "frozen").glob("*/*/*.sql")))
    repo_frozen += len(list((REPO / "migrations" / "frozen").glob("*/*/*.dropped")))
    repo_versions = len(list((REPO / "migrations" / "versions").glob("*.py")))
    assert wheel_files["sql"] == repo_sql
    assert wheel_files["migrations"] == repo_frozen + repo_versions + 2  # env.py, script.py.mako
    assert (package / "alembic.ini").is_file() and not (package / "alembic.ini").is_symlink()
    assert (package / "py.typed").is_file()
    print(f"\ninstalled package files per folder: {dict(sorted(wheel_files.items()))}")


def test_the_installed_commands_work_from_an_empty_directory(
    installed: Path, tmp_path: Path, server: ServerInfo, make_db: Callable[..., str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    url = server.url(make_db(migrated=False))

    where = _run(installed, empty, "python", "-c", "import dsreg_db; print(dsreg_db.__file__)")
    assert where.returncode == 0 and str(installed.parent) in where.stdout, where  # not the checkout

    version = _run(installed, empty, "dsreg", "--version")
    assert version.returncode == 0 and "version" in version.stdout

    up = _run(installed, empty, "dsreg", "upgrade", "--url", url)
    assert up.returncode == 0, up.stderr
    assert "dsreg_0001" in up.stdout and "Traceback" not in up.stderr

    doctor = _run(installed, empty, "dsreg", "doctor", "--url", url)
    assert doctor.returncode == 0 and "[FAIL]" not in doctor.stdout, doctor.stdout + doctor.stderr

    # the offline script, applied with the mariadb client to another empty database, gives the same schema
    script = _run(installed, empty, "dsreg", "upgrade", "--sql")
    assert script.returncode == 0 and "DELIMITER $$" in script.stdout, script.stderr
    offline_db = make_db(migrated=False)
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client is not None
    applied = subprocess.run(
        [client, "-h", server.host, "-P", str(server.port), "-u", server.user]
        + ([f"-p{server.password}"] if server.password else [])
        + [offline_db],
        input=script.stdout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert applied.returncode == 0, applied.stderr
    current = _run(installed, empty, "dsreg", "current", "--url", server.url(offline_db))
    assert current.returncode == 0 and current.stdout.split()[1] == current.stdout.split()[3], current.stdout

    # the Python API from the installed package
    api = _run(
        installed,
        empty,
        "python",
        "-c",
        f"from dsreg_db.schema import upgrade, current; upgrade({url!r}); print(current({url!r}))",
    )
    assert api.returncode == 0 and api.stdout.startswith("dsreg_"), api.stderr

    # the quickstart's job: a throwaway server of its own, a worker killed and its removal timed
    demo = _run(installed, empty, "dsreg", "demo")
    assert demo.returncode == 0 and "detection time:" in demo.stdout, demo.stdout + demo.stderr
    assert list(empty.iterdir()) == []  # nothing written into the user's directory
