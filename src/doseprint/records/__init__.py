"""records stage of doseprint."""
