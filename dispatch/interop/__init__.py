"""Standard messages of the field: NENA EIDO, OASIS CAP 1.2 and SAE J2735 / ISO TS 19091.

Pure converters (``eido``, ``cap``, ``j2735``) beside the standards' own schemas
(``schemas``); ``alerts`` and ``eido_intake`` are the only modules here that touch Redis.
"""
