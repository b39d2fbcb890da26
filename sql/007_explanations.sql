-- What explains a charge (docs/analysts.md, "Explaining a charge"): who or what each subject is,
-- the catalogue's prices, and views from a line to its explanation and its subjects
-- (v_municipalities, with names and inhabitants, is migration 006's).

-- Who or what a subject is, as the collector kept it in the event's data (optional fields):
-- subject_name = a device's name (older device events: device_name) or a user's display name;
-- subject_user = a device's primary user or a licence's user (UPN). Computed from the stored
-- attributes when read (ALIAS: nothing more is stored, and old rows have them too).
ALTER TABLE usage_events ADD COLUMN subject_name String ALIAS
    if(visitParamHas(attributes, 'subject_name'), visitParamExtractString(attributes, 'subject_name'),
       visitParamExtractString(attributes, 'device_name'));

ALTER TABLE usage_events ADD COLUMN subject_user String ALIAS
    visitParamExtractString(attributes, 'subject_user');

-- Every price of every price list, indexing resolved (written by `chargeback db sync-catalogue`).
--   synced_at  when the catalogue was last written to ClickHouse (UTC)
CREATE TABLE IF NOT EXISTS catalogue_prices
(
    price_list        String,
    valid_from        Date,
    service           String,
    model             String,
    unit_price        Nullable(Decimal(18, 2)),
    package_size      Nullable(Decimal(18, 6)),
    package_price     Nullable(Decimal(18, 2)),
    tiers             String,
    flat_amount       Nullable(Decimal(18, 2)),
    annual_amount     Nullable(Decimal(18, 2)),
    distribution_key  String,
    minimum           Nullable(Decimal(18, 2)),
    index_from        String,
    price_index       Nullable(Decimal(18, 6)),
    synced_at         DateTime('UTC')
)
ENGINE = ReplacingMergeTree(synced_at)
ORDER BY (price_list, service);

-- Services with their names and meters, one row per price list with its price model.
CREATE VIEW IF NOT EXISTS v_services AS
SELECT service, name, meter, unit, vat_rate, account, price_list, valid_from, model, unit_price,
       package_size, package_price, tiers, flat_amount, annual_amount, distribution_key, minimum,
       index_from, price_index
FROM
(
    SELECT service, argMax(name, synced_at) AS name, argMax(meter, synced_at) AS meter,
           argMax(unit, synced_at) AS unit, argMax(vat_rate, synced_at) AS vat_rate,
           argMax(account, synced_at) AS account
    FROM catalogue_services
    GROUP BY service
) AS services
ALL LEFT JOIN
(
    SELECT service, price_list, argMax(valid_from, synced_at) AS valid_from,
           argMax(model, synced_at) AS model, argMax(unit_price, synced_at) AS unit_price,
           argMax(package_size, synced_at) AS package_size, argMax(package_price, synced_at) AS package_price,
           argMax(tiers, synced_at) AS tiers, argMax(flat_amount, synced_at) AS flat_amount,
           argMax(annual_amount, synced_at) AS annual_amount,
           argMax(distribution_key, synced_at) AS distribution_key, argMax(minimum, synced_at) AS minimum,
           argMax(index_from, synced_at) AS index_from, argMax(price_index, synced_at) AS price_index
    FROM catalogue_prices
    GROUP BY price_list, service
) AS prices USING service;

-- Each subject's usage per month (by usage day), municipality, cost centre and service: its days,
-- its unit-days (sum over days of its largest quantity that day) and its summed quantity.
CREATE VIEW IF NOT EXISTS v_subjects_monthly AS
SELECT period, municipality, cost_centre, service, subject, count() AS days, sum(q_max) AS unit_days,
       sum(q_sum) AS quantity, argMax(name, last_time) AS subject_name, argMax(user, last_time) AS subject_user
FROM
(
    SELECT substring(toString(day), 1, 7) AS period, municipality, cost_centre, service, day, subject,
           max(quantity) AS q_max, sum(quantity) AS q_sum, argMax(subject_name, event_time) AS name,
           argMax(subject_user, event_time) AS user, max(event_time) AS last_time
    FROM usage_events
    GROUP BY period, municipality, cost_centre, service, day, subject
) AS per_subject_day
GROUP BY period, municipality, cost_centre, service, subject;

-- The subjects behind each line of each run: the line's month's usage per subject.
CREATE VIEW IF NOT EXISTS v_line_subjects AS
SELECT run_id, status, period, municipality, cost_centre, service, subject, days, unit_days, quantity,
       subject_name, subject_user
FROM
(
    SELECT run_id, status, period, municipality, cost_centre, service FROM v_charges
) AS lines
ALL INNER JOIN v_subjects_monthly USING period, municipality, cost_centre, service;

-- One row per line with the figures that explain it: the usage it was measured from (summed over
-- its subjects), the days of its month, the municipality's total of the service in the run, the
-- price model and its prices, the municipality's name and inhabitants.
CREATE VIEW IF NOT EXISTS v_line_explanations AS
SELECT run_id, run_period, period, status, municipality, municipality_name, inhabitants, cost_centre,
       service, service_name, meter, model, price_list, days_in_month, subjects, subject_days,
       unit_days, usage_quantity, municipality_quantity, municipality_amount, quantity, unit,
       unit_price, amount, vat_rate, vat_amount, currency, list_unit_price, package_size,
       package_price, tiers, flat_amount, annual_amount, distribution_key, minimum, index_from,
       price_index
FROM
(
    SELECT *
    FROM
    (
        SELECT *
        FROM
        (
            SELECT *
            FROM
            (
                SELECT run_id, run_period, period, status, municipality, cost_centre, service, quantity,
                       unit, unit_price, amount, vat_rate, vat_amount, currency, price_list,
                       toDayOfMonth(addDays(addMonths(toDate(concat(period, '-01')), 1), -1))
                           AS days_in_month
                FROM v_charges
            ) AS lines
            ANY LEFT JOIN
            (
                SELECT period, municipality, cost_centre, service, count() AS subjects,
                       sum(days) AS subject_days, sum(unit_days) AS unit_days, sum(quantity) AS usage_quantity
                FROM v_subjects_monthly
                GROUP BY period, municipality, cost_centre, service
            ) AS used USING period, municipality, cost_centre, service
        ) AS measured
        ANY LEFT JOIN
        (
            SELECT run_id, period, municipality, service, sum(quantity) AS municipality_quantity,
                   sum(amount) AS municipality_amount
            FROM billing_lines
            GROUP BY run_id, period, municipality, service
        ) AS totals USING run_id, period, municipality, service
    ) AS summed
    ANY LEFT JOIN
    (
        SELECT service, price_list, name AS service_name, meter, model, unit_price AS list_unit_price,
               package_size, package_price, tiers, flat_amount, annual_amount, distribution_key, minimum,
               index_from, price_index
        FROM v_services
    ) AS priced USING service, price_list
) AS explained
ANY LEFT JOIN
(
    SELECT municipality, name AS municipality_name, inhabitants FROM v_municipalities
) AS named USING municipality;
