"""Integration tests, by topic: processes, loopback HTTP (the bundled simulator counts), SQLite and
PostgreSQL, Prometheus and Alertmanager. Everything binds 127.0.0.1 on free ports and every wait is bounded."""
