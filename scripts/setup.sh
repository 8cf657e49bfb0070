#!/usr/bin/env bash
# Shared setup for scripts/demo.sh and scripts/test.sh on Debian/Ubuntu:
# a MariaDB server binary (from apt, only when none is installed), a virtualenv
# in .venv with dsreg-db installed editable (plus test tools with --test).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v mariadbd >/dev/null && ! command -v mysqld >/dev/null \
   && [ ! -x /usr/sbin/mariadbd ] && [ ! -x /usr/sbin/mysqld ]; then
    echo "setup: installing mariadb-server (a server binary for the throwaway test server)"
    apt_install mariadb-server mariadb-client
fi

if [ "${1:-}" = "--test" ]; then
    # the Java client's tests compile it with javac against Debian's JDBC driver
    command -v javac >/dev/null || apt_install default-jdk-headless
    [ -e /usr/share/java/mariadb-java-client.jar ] || apt_install libmariadb-java
    # ... and run its JUnit 5 tests with the console launcher
    [ -e /usr/share/java/junit-platform-console-standalone.jar ] || apt_install junit5
    # the Galera tests start a 3-node cluster on loopback (rsync state transfer)
    { [ -e /usr/lib/galera/libgalera_smm.so ] && command -v rsync >/dev/null; } || apt_install galera-4 rsync
    # dsreg bench --peers (and tests/test_peers.py) start a private etcd and ZooKeeper next to MariaDB
    command -v etcd >/dev/null || apt_install etcd-server
    [ -e /usr/share/java/zookeeper.jar ] || apt_install zookeeper
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv 2>/dev/null || { apt_install python3-venv; python3 -m venv .venv; }
fi
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".${extras}"
