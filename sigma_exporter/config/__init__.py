"""Stage 1, the YAML contract: one typed walker (`walker.py`, shared with the web config and the
simulator's scenarios), the typed model, secrets that print as `<secret>`, and validation whose errors read
`FILE: KEY: problem`. May import: nothing of the package but itself."""
