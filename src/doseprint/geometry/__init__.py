"""geometry stage of doseprint."""
