"""Measuring: eval cases and metrics, the run and its regression gate, reports, abstention calibration, feedback."""
