"""job stage of doseprint."""
