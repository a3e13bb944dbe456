"""The core every stage shares: records and their checks, names and versions, the config,
the catalog, the build report, safe files, YAML and JSON, limits and default paths.

Takes: text (probes.yaml, catalog files, fragments, reports) and host facts. Gives:
validated frozen records (records.py, built only through its factories; report.py's
BuildResult, the record build, loadtest, publish and audit pass along), the loader's
probe names (naming.py) for each driver type (drivertypes.py: eBPF probe, kernel
module), which Falco release loads which driver version (versions.py, config.py), and
the catalog (catalog.py).
Pure but for reading files and writing them atomically (files.py; YAML in yamlio.py,
JSON in jsonio.py); nothing here talks to the network, and nothing here imports a stage.

Schemas live next to the record they describe (schema.py is the checker they use).
The exceptions are formats that are not records: probes.yaml (config.py), the plan
file (plan.py) and a kernel-crawler list (kernels/crawler.py), each beside its reader.
"""
