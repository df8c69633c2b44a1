"""Findings for people and machines: report rows, OCSF, ASFF, HTML and CSV files, and Security Hub import.
Renderers are pure: rows in, text out."""
