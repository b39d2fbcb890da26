-- Billing runs and their lines, written by `chargeback billing run`.
-- A run's state changes are new rows with a higher revision; the newest revision is the state.
--   created_at  when the run was priced (UTC)
--   changed_at  when this revision was written: finalised or voided (UTC)
CREATE TABLE IF NOT EXISTS billing_runs
(
    run_id            String,
    period            String,
    municipalities    Array(String),
    status            String,
    price_list        String,
    currency          String,
    catalogue_sha256  String,
    usage_sha256      String,
    created_at        DateTime('UTC'),
    changed_at        DateTime('UTC'),
    revision          UInt32
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY run_id;

CREATE TABLE IF NOT EXISTS billing_lines
(
    run_id        String,
    period        String,
    municipality  String,
    cost_centre   String,
    service       String,
    quantity      Decimal(18, 6),
    unit          String,
    unit_price    Nullable(Decimal(18, 2)),
    amount        Decimal(18, 2),
    vat_rate      Decimal(9, 4),
    vat_amount    Decimal(18, 2),
    currency      String,
    price_list    String
)
ENGINE = MergeTree()
ORDER BY (run_id, municipality, cost_centre, service);
