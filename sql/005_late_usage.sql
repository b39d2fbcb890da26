-- Usage stored after its month was invoiced: what the next run bills as corrections.
--   stored_at     when the stream worker stored the event (UTC)
--   finalised_at  when the first final run of the event's month was finalised (UTC)
CREATE VIEW IF NOT EXISTS v_late_usage AS
SELECT event_id, municipality, cost_centre, service, day, quantity, stored_at, finalised_at, period
FROM
(
    SELECT event_id, municipality, cost_centre, service, day, quantity, stored_at,
           substring(toString(day), 1, 7) AS period
    FROM usage_events
) AS events
ALL INNER JOIN
(
    SELECT period, min(changed_at) AS finalised_at
    FROM
    (
        SELECT run_id, any(period) AS period, argMax(status, revision) AS status,
               argMax(changed_at, revision) AS changed_at
        FROM billing_runs
        GROUP BY run_id
    ) AS latest
    WHERE status = 'final'
    GROUP BY period
) AS finalised USING period
WHERE stored_at > finalised_at;
