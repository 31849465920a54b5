"""Replicas of the app behind nginx, on one PostgreSQL: `python -m cluster --replicas 2`."""
