-- The steering views: the members with their names and inhabitants (from the newest
-- `chargeback db sync-catalogue`), and the invoiced IT cost per inhabitant per month, member and
-- service, with the organisation's average beside each member. Documented in docs/analysts.md.

-- Each municipality of the catalogue as last synced: its name and the inhabitants in force on
-- the day of that sync.
CREATE VIEW IF NOT EXISTS v_municipalities AS
SELECT municipality, argMax(name, synced_at) AS name, argMax(inhabitants, synced_at) AS inhabitants
FROM catalogue_municipalities
GROUP BY municipality;

-- Cost of final runs (corrections in the month they correct, excl. VAT) per month, member and
-- service, and per member in total (service '*'); every member billed in the month has a row for
-- every service billed in it (0 where it has none). per_inhabitant = cost / inhabitants and the
-- organisation's = the cost of all members billed in the month / their inhabitants, each rounded
-- to 0.01 half away from zero. Joins to a table with one row per key are ALL joins: a current
-- ClickHouse's ANY INNER JOIN also keeps only one row of the left side per key.
CREATE VIEW IF NOT EXISTS v_cost_per_inhabitant AS
SELECT
    period, municipality, name, service, cost, inhabitants,
    toDecimal64(round(toDecimal128(cost, 6) / inhabitants, 2), 2) AS per_inhabitant,
    organisation_cost, organisation_inhabitants,
    toDecimal64(round(toDecimal128(organisation_cost, 6) / organisation_inhabitants, 2), 2)
        AS organisation_per_inhabitant
FROM
(
    SELECT period, municipality, name, service, cost, inhabitants, organisation_cost
    FROM
    (
        SELECT period, municipality, service, name, inhabitants, cost
        FROM
        (
            SELECT period, municipality, service, name, inhabitants
            FROM
            (
                SELECT period, municipality, name, inhabitants
                FROM (SELECT DISTINCT period, municipality FROM v_charges_final) AS billed
                ALL INNER JOIN
                (SELECT municipality, name, inhabitants FROM v_municipalities) AS places USING municipality
            ) AS members
            ALL INNER JOIN
            (
                SELECT DISTINCT period, service FROM v_charges_final
                UNION ALL
                SELECT DISTINCT period, '*' AS service FROM v_charges_final
            ) AS services USING period
        ) AS grid
        ANY LEFT JOIN
        (
            SELECT period, municipality, service, sum(amount) AS cost
            FROM
            (
                SELECT period, municipality, service, amount FROM v_charges_final
                UNION ALL
                SELECT period, municipality, '*' AS service, amount FROM v_charges_final
            ) AS lines
            GROUP BY period, municipality, service
        ) AS costs USING period, municipality, service
    ) AS member_costs
    ANY LEFT JOIN
    (
        SELECT period, service, sum(amount) AS organisation_cost
        FROM
        (
            SELECT period, municipality, service, amount FROM v_charges_final
            UNION ALL
            SELECT period, municipality, '*' AS service, amount FROM v_charges_final
        ) AS all_lines
        WHERE municipality IN (SELECT municipality FROM v_municipalities)
        GROUP BY period, service
    ) AS organisation USING period, service
) AS with_organisation
ANY LEFT JOIN
(
    SELECT period, sum(inhabitants) AS organisation_inhabitants
    FROM
    (
        SELECT period, inhabitants
        FROM (SELECT DISTINCT period, municipality FROM v_charges_final) AS billed_members
        ALL INNER JOIN
        (SELECT municipality, inhabitants FROM v_municipalities) AS people USING municipality
    ) AS member_inhabitants
    GROUP BY period
) AS organisation_people USING period;
