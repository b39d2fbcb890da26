-- Messages refused by the stream worker, with the reason; the same letters go to the dead-letter
-- topic, from where an operator can fix and replay them.
--   dead_at       when the worker refused the message (UTC)
--   message_time  the broker timestamp of the original message (UTC), when it had one
CREATE TABLE IF NOT EXISTS dead_letters
(
    kafka_topic     String,
    kafka_partition UInt32,
    kafka_offset    UInt64,
    message_key     String,
    reason          String,
    value           String,
    value_base64    String,
    message_time    Nullable(DateTime('UTC')),
    dead_at         DateTime('UTC')
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(dead_at)
ORDER BY (kafka_topic, kafka_partition, kafka_offset);
