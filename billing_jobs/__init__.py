"""billing_jobs."""
