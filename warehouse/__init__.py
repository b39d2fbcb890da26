"""Schema operations on ClickHouse: migrations, the catalogue for analysts, logins and member databases."""
