"""gcode stage of doseprint."""
