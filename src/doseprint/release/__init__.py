"""release stage of doseprint."""
