-- Raw valid usage events: one row per distinct event id (the first occurrence wins), written by
-- the stream worker. The audit trail, and the source every usage figure is derived from.
--   event_time  the observation time the collector put in the event (UTC)
--   day         the calendar day of event_time in the deployment's time zone (billing day)
--   stored_at   when the stream worker wrote the row (UTC)
--   kafka_*     where the event was read; with them a restarted worker finds what it already wrote
CREATE TABLE IF NOT EXISTS usage_events
(
    event_id        String,
    source          String,
    municipality    String,
    cost_centre     String,
    service         String,
    subject         String,
    quantity        Decimal(18, 6),
    event_time      DateTime('UTC'),
    day             Date,
    attributes      String,
    kafka_topic     String,
    kafka_partition UInt32,
    kafka_offset    UInt64,
    stored_at       DateTime('UTC')
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (municipality, service, day, cost_centre, subject, event_id);
