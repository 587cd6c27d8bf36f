"""Oversight: usage monitoring against a rule library, alerts, notification and automatic freeze."""
