"""The ``tmeatlas`` console command: ``tmeatlas run`` (a cohort to an atlas and reports) and ``tmeatlas demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = argparse.ArgumentParser(
        prog="tmeatlas", description="Tumour-microenvironment atlases from single-cell and spatial data."
    )
    p.add_argument("--version", action="version", version=f"tmeatlas {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "run",
        help="run the whole atlas on an .h5ad: annotated .h5ad, tables, figures and HTML reports in --out",
        description="Run tm.run on INPUT.h5ad. When --out already holds atlas.h5ad of the same cells, the run resumes "
        "from it and skips the steps done with the same parameters (use --force to redo them).",
    )
    r.add_argument("input", help="input .h5ad (raw counts preferred, or log-normalised)")
    r.add_argument("--sample-key", default=None,
                   help="obs column naming each cell's patient/sample (omit for a single sample)")  # fmt: skip
    r.add_argument("--out", required=True, help="output folder (created)")
    r.add_argument(
        "--therapies", default=None, help="comma-separated therapy names (default: all in the knowledge base)"
    )
    r.add_argument("--layer", default=None, help="layer with the counts instead of X")
    r.add_argument(
        "--gene-symbols", default=None, help="var column with HGNC symbols (when var_names are Ensembl IDs)"
    )
    sp = r.add_mutually_exclusive_group()
    sp.add_argument(
        "--spatial", dest="spatial", action="store_true", default=None, help="require the spatial steps"
    )
    sp.add_argument("--no-spatial", dest="spatial", action="store_false", help="skip the spatial steps")
    so = r.add_mutually_exclusive_group()
    so.add_argument(
        "--spots", dest="spots", action="store_true", default=None,
        help="observations are spots (Visium, ST); default: detected from the coordinates",
    )  # fmt: skip
    so.add_argument("--cells", dest="spots", action="store_false", help="observations are single cells")
    r.add_argument("--steps", default=None, help="comma-separated steps to run (default: all that apply)")
    r.add_argument("--skip", default=None, help="comma-separated steps not to run")
    r.add_argument("--force", nargs="?", const="all", default=None,
                   help="redo steps already done (all, or a comma-separated list); also ignores an existing atlas.h5ad")  # fmt: skip
    r.add_argument(
        "--integrate", action="store_true", help="scVI integration across samples (needs tmeatlas[scvi])"
    )
    r.add_argument(
        "--simulate", default=None, help="comma-separated therapies whose dosing schedules to simulate"
    )
    r.add_argument(
        "--lazy", action="store_true",
        help="keep the matrix on disk (Dask arrays read in row blocks) for cohorts larger than memory",
    )  # fmt: skip
    r.add_argument("--no-report", action="store_true", help="no HTML reports")
    r.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    r.add_argument("--n-jobs", type=int, default=None, help="threads")
    r.add_argument("--quiet", action="store_true", help="no progress display")
    d = sub.add_parser(
        "demo", help="simulate a tumour cohort and run `tmeatlas run` on it, with accuracy against the truth"
    )
    d.add_argument("--out", required=True, help="output folder (created)")
    d.add_argument("--n-cells", type=int, default=20_000, help="cells in the cohort (default 20,000)")
    d.add_argument("--n-patients", type=int, default=4, help="patients (default 4)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--quiet", action="store_true", help="no progress display")
    return p


def _run(args) -> None:
    import anndata as ad

    from ._core.chunks import read_h5ad_lazy
    from ._errors import InvalidInputError
    from ._pipeline import run

    read = read_h5ad_lazy if args.lazy else ad.read_h5ad
    src = Path(args.input)
    if not src.exists():
        raise InvalidInputError(f"input file {str(src)!r} does not exist.")
    out = Path(args.out)
    previous = out / "atlas.h5ad"
    force = args.force
    force_arg: bool | list[str] = False
    if force == "all":
        force_arg = True
    elif force:
        force_arg = _list(force) or False
    if previous.exists() and force_arg is not True:
        new_obs = ad.read_h5ad(src, backed="r").obs_names
        adata = read(previous)
        if len(new_obs) != adata.n_obs or not (adata.obs_names == new_obs).all():
            raise InvalidInputError(
                f"{previous} holds results for other cells than {src}; pass a new --out, or --force to start over."
            )
        if not args.quiet:
            print(f"tmeatlas run: resuming from {previous}", file=sys.stderr)
    else:
        adata = read(src)
    run(
        adata, sample_key=args.sample_key, spatial=args.spatial, spots=args.spots, therapies=_list(args.therapies), out=out,
        layer=args.layer, gene_symbols=args.gene_symbols, steps=_list(args.steps), skip=_list(args.skip) or (),
        force=force_arg, integrate=args.integrate, simulate=_list(args.simulate) or (), report=not args.no_report,
        rng=args.seed, n_jobs=args.n_jobs, progress=not args.quiet,
    )  # fmt: skip
    if not args.quiet:
        print(f"tmeatlas run: wrote {out}/ (report: {out / 'report' / 'index.html'})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ._errors import TmeatlasError

    try:
        if args.command == "demo":
            from ._demo import run_demo

            run_demo(
                out=args.out,
                n_cells=args.n_cells,
                n_patients=args.n_patients,
                rng=args.seed,
                progress=not args.quiet,
            )
        elif args.command == "run":
            _run(args)
    except TmeatlasError as e:
        print(f"tmeatlas: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
