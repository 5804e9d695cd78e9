"""comms stage of doseprint."""
