"""The core every stage shares: records and their checks, names and versions, the config,
the catalog, safe YAML and JSON, limits and default paths.

Takes: text (probes.yaml, catalog files, fragments) and host facts. Gives: validated
frozen records (records.py, built only through its factories), the loader's probe
names (naming.py), which Falco release loads which driver version (versions.py,
config.py), and the catalog (catalog.py). Pure but for reading and atomically writing
files (yamlio.py); nothing here talks to the network.
"""
