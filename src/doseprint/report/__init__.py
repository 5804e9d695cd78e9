"""report stage of doseprint."""
