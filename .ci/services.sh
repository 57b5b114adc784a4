#!/usr/bin/env bash
# Checks that PostgreSQL and RabbitMQ answer on 127.0.0.1 and starts the one that does not.
set -euo pipefail

answers() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }

if ! answers 5432; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi
if ! answers 5672; then
  echo "RabbitMQ is down: starting it"
  rabbitmq-server -detached
fi
for i in $(seq 1 60); do
  if answers 5432 && answers 5672; then echo "PostgreSQL and RabbitMQ answer"; exit 0; fi
  sleep 1
done
echo "PostgreSQL or RabbitMQ did not come up within 60 s" >&2
exit 1
