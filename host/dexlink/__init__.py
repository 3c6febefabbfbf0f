"""dexlink: teleoperation and data collection for dexterous hands (host side)."""

__version__ = "0.1.0"
