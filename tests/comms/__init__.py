"""Tests of doseprint.comms: protocol, transports, streamer and the virtual printer."""
