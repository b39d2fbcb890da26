-- What a correction of a finalised month needs to be exact and to explain itself.
--
-- billing_catalogues: the catalogue each billing run was priced with, by the SHA-256 of its bytes
-- (billing_runs.catalogue_sha256), so that a later run prices a finalised month's corrections with
-- the catalogue the month was billed with.
--   stored_at  when the first run priced with this catalogue stored it (UTC)
CREATE TABLE IF NOT EXISTS billing_catalogues
(
    catalogue_sha256  String,
    body              String,
    stored_at         DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY catalogue_sha256;

-- billing_line_reasons: why a correction line of a run exists, one row per correction line
-- (run_id, period = the corrected month, municipality, cost centre, service of billing_lines):
-- 'late usage' (usage stored after the month was finalised), 'repriced' (the current catalogue,
-- asked for with --reprice-invoiced) or 'late usage, repriced'.
CREATE TABLE IF NOT EXISTS billing_line_reasons
(
    run_id        String,
    period        String,
    municipality  String,
    cost_centre   String,
    service       String,
    reason        String
)
ENGINE = ReplacingMergeTree()
ORDER BY (run_id, period, municipality, cost_centre, service);
