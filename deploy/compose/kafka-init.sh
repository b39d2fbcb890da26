#!/bin/bash
# Run once by docker-compose.yml's kafka-init service (the broker's own image, on the internal
# listener): creates the usage and dead-letter topics, one SCRAM-SHA-512 login per member from
# /run/kafka-users/<login> (the file holds the password), and gives each login only what a
# collector needs: describe and write on the usage topic. Idempotent: run it again after adding
# a member's file. Passwords go to the broker through a file, never on a command line.
set -euo pipefail

bootstrap=${KAFKA_INIT_BOOTSTRAP:-kafka:9092}
usage_topic=${KAFKA_INIT_USAGE_TOPIC:-usage.events}
dead_topic=${KAFKA_INIT_DEAD_TOPIC:-usage.dead}
partitions=${KAFKA_INIT_PARTITIONS:-12}
bin=/opt/kafka/bin

"$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --create --if-not-exists \
  --topic "$usage_topic" --partitions "$partitions" --replication-factor 1 \
  --config retention.ms=7776000000          # 90 days: long enough to replay a quarter
"$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --create --if-not-exists \
  --topic "$dead_topic" --partitions "$partitions" --replication-factor 1 \
  --config retention.ms=31536000000         # a year: dead letters wait for a human

umask 077
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
shopt -s nullglob
for file in /run/kafka-users/*; do
  login=$(basename "$file")
  case "$login" in *[!A-Za-z0-9._-]*) echo "kafka-init: skipping $file: a login is letters, digits, . _ -" >&2; continue;; esac
  password=$(tr -d '\r\n' < "$file")
  if [ -z "$password" ]; then
    echo "kafka-init: $file is empty" >&2
    exit 1
  fi
  printf 'SCRAM-SHA-512=[iterations=8192,password=%s]\n' "$password" > "$scratch/scram.properties"
  "$bin/kafka-configs.sh" --bootstrap-server "$bootstrap" --alter --entity-type users \
    --entity-name "$login" --add-config-file "$scratch/scram.properties" > /dev/null
  rm -f "$scratch/scram.properties"
  "$bin/kafka-acls.sh" --bootstrap-server "$bootstrap" --add --allow-principal "User:$login" \
    --operation Describe --operation Write --topic "$usage_topic" > /dev/null
  echo "kafka-init: login $login may write to $usage_topic"
done
