"""Unit tests, one folder per stage of the package (config, sigma, runs, metrics, web, ...): pure and fast.
No subprocess, no network socket (not even loopback), no database (not even SQLite in a temporary
directory). `make unit` runs this folder alone, in well under a minute."""
