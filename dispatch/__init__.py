"""Yishao (一哨群应): real-time multi-agency emergency dispatch coordination."""

__version__ = "0.1.0"
