"""slicer stage of doseprint."""
