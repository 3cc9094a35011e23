"""Presentation of results: terminal tables and progress (plots and reports come later)."""
