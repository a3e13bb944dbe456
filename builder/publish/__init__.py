"""The publish stage: build reports in, probes in a store and a catalog fragment out.

Takes: build reports (and the load test's verdicts in them), provenance bundles.
Gives: every probe, its log and attestation in a store (stores/: a directory in the
loader's layout, or GitHub Releases), and a fragment (JSON Lines) that
`catalog merge` folds into the catalog. stage.py never loses a probe: each line is
written once the store confirms it. attest.py reads and checks provenance bundles.
"""
