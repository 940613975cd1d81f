"""The ``tmeatlas`` console command."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = argparse.ArgumentParser(prog="tmeatlas", description="Tumour-microenvironment atlases from single-cell and spatial data.")
    p.add_argument("--version", action="version", version=f"tmeatlas {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="simulate a tumour cohort and run every analysis tmeatlas has on it")
    d.add_argument("--out", required=True, help="output folder (created)")
    d.add_argument("--n-cells", type=int, default=20_000, help="cells in the cohort (default 20,000)")
    d.add_argument("--n-patients", type=int, default=4, help="patients (default 4)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--quiet", action="store_true", help="no progress display")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ._errors import TmeatlasError

    try:
        if args.command == "demo":
            from ._demo import run_demo

            run_demo(out=args.out, n_cells=args.n_cells, n_patients=args.n_patients, rng=args.seed, progress=not args.quiet)
    except TmeatlasError as e:
        print(f"tmeatlas: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
