#!/usr/bin/env bash
# Runs a command with a Redis for the tests. Uses the one at
# WXNOTIFY_TEST_REDIS_ADDR (default 127.0.0.1:6379) when it answers;
# otherwise starts a throwaway redis-server on a free port, points the
# tests at it, and stops it afterwards.
set -euo pipefail

addr="${WXNOTIFY_TEST_REDIS_ADDR:-127.0.0.1:6379}"

ping() { # host port
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h "$1" -p "$2" ping 2>/dev/null)" = "PONG" ]
  else
    (exec 3<>"/dev/tcp/$1/$2" && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null
  fi
}

if ping "${addr%:*}" "${addr##*:}"; then
  export WXNOTIFY_TEST_REDIS_ADDR="$addr"
  exec "$@"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  cat >&2 <<MSG
No Redis answers at $addr and redis-server is not installed.
The tests need a real Redis (6.2 or newer). Either:
  - install it:      sudo apt-get install redis-server   (Debian/Ubuntu)
                     brew install redis                  (macOS)
  - run one:         docker run --rm -p 6379:6379 redis:7
  - or point the tests at yours: WXNOTIFY_TEST_REDIS_ADDR=host:port make test
MSG
  exit 1
fi

port=6399
while ping 127.0.0.1 "$port" || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  port=$((port + 1))
done
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 50); do ping 127.0.0.1 "$port" && break; sleep 0.1; done
echo "with-redis: started a throwaway redis-server on 127.0.0.1:$port" >&2
export WXNOTIFY_TEST_REDIS_ADDR="127.0.0.1:$port"
"$@"
