"""design stage of doseprint."""
