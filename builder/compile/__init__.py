"""The compile stage: planned jobs in, a build report out.

Takes: a plan's jobs (a kernel and the probes to build for it, named by the plan).
Gives: <out>/report.jsonl (core/report.py: one BuildResult per probe, built or failed
with its category and reason), the checked probe files and every compile log.

stage.py runs the jobs: header packages are downloaded (shared/fetch.py) and unpacked
(shared/extract.py) into one sysroot per kernel (sysroot.py); driversrc.py prepares
each driver source as upstream's cmake would, kbuild.py compiles it (cross-building
aarch64), and shared/elfcheck.py checks the object. (Named `compile`, not `build`: tools
read a folder called `build` as generated output and skip it.)
"""
