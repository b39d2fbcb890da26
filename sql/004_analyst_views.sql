-- The analysts' surface: the catalogue's services and municipalities as tables (written by
-- `chargeback db sync-catalogue`), and stable views over usage, charges and dead letters.
-- Documented column by column in docs/analysts.md. Views keep to SQL that ClickHouse 18.16 runs.
--   synced_at  when the catalogue was last written to ClickHouse (UTC)
CREATE TABLE IF NOT EXISTS catalogue_services
(
    service    String,
    name       String,
    meter      String,
    unit       String,
    vat_rate   Decimal(9, 4),
    account    String,
    synced_at  DateTime('UTC')
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY service;

CREATE TABLE IF NOT EXISTS catalogue_municipalities
(
    municipality  String,
    name          String,
    inhabitants   UInt32,
    synced_at     DateTime('UTC')
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY municipality;

-- Usage per municipality, cost centre, service and calendar day, with the day's quantity by the
-- service's meter: count = sum of quantities, daily_distinct = distinct subjects,
-- daily_max = sum over subjects of the day's largest quantity.
CREATE VIEW IF NOT EXISTS v_usage_daily AS
SELECT
    municipality, cost_centre, service, day, meter,
    multiIf(meter = 'count', quantity_sum, meter = 'daily_distinct', toDecimal128(subjects, 6), max_quantity_sum)
        AS quantity,
    events, subjects
FROM
(
    SELECT municipality, cost_centre, service, day,
           sum(q_sum) AS quantity_sum, count() AS subjects, sum(q_max) AS max_quantity_sum, sum(n) AS events
    FROM
    (
        SELECT municipality, cost_centre, service, day, subject,
               sum(quantity) AS q_sum, max(quantity) AS q_max, count() AS n
        FROM usage_events
        GROUP BY municipality, cost_centre, service, day, subject
    ) AS per_subject
    GROUP BY municipality, cost_centre, service, day
) AS per_day
ANY LEFT JOIN
(
    SELECT service, argMax(meter, synced_at) AS meter FROM catalogue_services GROUP BY service
) AS meters USING service;

-- Billable quantity per calendar month by the metering rules (before billing's rounding to 6
-- decimals half-up): count meters sum, daily meters sum over days divided by the month's days.
CREATE VIEW IF NOT EXISTS v_usage_monthly AS
SELECT
    municipality, cost_centre, service, month, meter, days, quantity_total,
    if(meter = 'count', toDecimal128(quantity_total, 12), toDecimal128(quantity_total, 12) / days)
        AS billable_quantity
FROM
(
    SELECT municipality, cost_centre, service, toStartOfMonth(day) AS month, any(meter) AS meter,
           toDayOfMonth(addDays(addMonths(toStartOfMonth(day), 1), -1)) AS days,
           sum(quantity) AS quantity_total
    FROM v_usage_daily
    GROUP BY municipality, cost_centre, service, month, days
) AS per_month;

-- Every line of every billing run, with the run's current state.
CREATE VIEW IF NOT EXISTS v_charges AS
SELECT
    run_id, period, municipality, cost_centre, service, quantity, unit, unit_price, amount,
    vat_rate, vat_amount, currency, price_list, status, run_period, finalised_at
FROM billing_lines
ANY LEFT JOIN
(
    SELECT run_id, argMax(status, revision) AS status, any(period) AS run_period,
           argMax(changed_at, revision) AS finalised_at
    FROM billing_runs
    GROUP BY run_id
) AS runs USING run_id;

-- Lines of final runs only: what was invoiced.
CREATE VIEW IF NOT EXISTS v_charges_final AS
SELECT run_id, period, municipality, cost_centre, service, quantity, unit, unit_price, amount,
       vat_rate, vat_amount, currency, price_list, run_period, finalised_at
FROM v_charges
WHERE status = 'final';

-- Refused messages with their reasons.
CREATE VIEW IF NOT EXISTS v_dead_letters AS
SELECT dead_at, reason, message_key AS municipality_key, kafka_topic, kafka_partition, kafka_offset,
       message_time, value
FROM dead_letters;

-- The raw event audit trail: one row per distinct valid event.
CREATE VIEW IF NOT EXISTS v_usage_events AS
SELECT event_id, source, municipality, cost_centre, service, subject, quantity, event_time, day,
       attributes, stored_at, kafka_topic, kafka_partition, kafka_offset
FROM usage_events;
