"""The build stage: planned jobs in, a build report out.

Takes: a plan's jobs (a kernel and the probes to build for it, named by the plan).
Gives: <out>/report.jsonl (report.py: one BuildResult per probe, built or failed with
its category and reason), the checked probe files and every compile log.

stage.py runs the jobs: fetch.py downloads header packages (cached, hash-checked),
extract.py unpacks them safely, sysroot.py makes one sysroot per kernel,
driversrc.py prepares each driver source as upstream's cmake would, kbuild.py compiles
it (cross-building aarch64), elfcheck.py checks the object.
"""
