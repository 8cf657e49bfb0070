#!/usr/bin/env bash
# A registry client in shell: only the mariadb (or mysql) command-line client.
# Opens a session, registers PATH with VALUE by heartbeating every second
# (BEATS times; 0 = until interrupted), lists the siblings, closes the session.
#
#   DSREG_HOST=127.0.0.1 DSREG_PORT=3306 DSREG_USER=app DSREG_PASSWORD=... DSREG_DB=scheduler \
#       bash examples/shell/worker.sh /nodes/worker/host-1:1234 '{"load":0.1}'
set -euo pipefail
path=$1
value=$2
beats=${BEATS:-0}
client=$(command -v mariadb || command -v mysql)

sql() {  # one statement batch per connection: nothing is kept between calls but what we pass
    "$client" --batch --skip-column-names -h "${DSREG_HOST:-127.0.0.1}" -P "${DSREG_PORT:-3306}" \
        -u "${DSREG_USER:-root}" ${DSREG_PASSWORD:+"-p$DSREG_PASSWORD"} "${DSREG_DB:?set DSREG_DB}" -e "$1"
}
quote() {  # a SQL string literal: backslashes and quotes escaped
    local s=${1//\\/\\\\}
    s=${s//\'/\\\'}
    printf "'%s'" "$s"
}

read -r sid token < <(sql "CALL dsreg_session_open($(quote "shell@$(hostname)"), 5000, @s, @t); SELECT @s, @t;")
echo "session $sid"
trap 'sql "CALL dsreg_session_close($sid, $(quote "$token"))" && echo closed' EXIT

n=0
while [ "$beats" = 0 ] || [ "$n" -lt "$beats" ]; do
    # a failed call exits non-zero with the SQLSTATE in the message: 45001 means re-open and re-register
    sql "CALL dsreg_heartbeat($sid, $(quote "$token"), $(quote "$path"), $(quote "$value"))"
    echo "heartbeat ok"
    n=$((n + 1))
    sleep 1
done
echo "children: $(sql "CALL dsreg_children($(quote "${path%/*}"))" | paste -sd ' ')"
