"""What the catalog's users run: find, verify, mirror and audit.

Takes: the catalog (or the site's JSON index), a node's facts, files and stores.
Gives: the probe a node's loader requests and whether it exists (find.py), checked
files (verify.py), a mirror any web server can serve as DRIVERS_REPO (mirror.py),
and the drift between the catalog and a store (audit.py).
"""
