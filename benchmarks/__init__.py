"""perr's benchmark scripts. Run each one from the repository root as a module, e.g.

    python -m benchmarks.train_speed --out runs/train_speed.json

so that the scripts import each other and the shared harness (`benchmarks.harness`) without touching
`sys.path`. Results that the docs cite live in `benchmarks/results/` (see its README.md)."""
