"""The ``tmeatlas`` console command: ``tmeatlas run`` (a cohort to an atlas and reports) and ``tmeatlas demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


#: exit status of ``tmeatlas``: bad arguments or input (argparse uses 2 too), and a failed step
EXIT_BAD_INPUT = 2
EXIT_STEP_FAILED = 3


def _list(text: str | None) -> list[str] | None:
    """A comma-separated argument as a list of names (``None`` stays ``None``)."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _parser() -> argparse.ArgumentParser:
    """The argument parser of ``tmeatlas`` (``run`` and ``demo``)."""
    from ._readers import KINDS
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
    r.add_argument(
        "input",
        help="input: .h5ad, 10x .h5 or matrix folder, Space Ranger folder, SpatialData store, or a cell table (CSV); see tm.read",
    )
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
    r.add_argument(
        "--input-kind", default=None,
        help=f"kind of INPUT (default: detected from the path): {', '.join(KINDS)}, or inform, halo, qupath, codex, xenium",
    )  # fmt: skip
    r.add_argument(
        "--microns-per-unit", type=float, default=None,
        help="microns per coordinate unit of INPUT (e.g. the pixel size for pixel coordinates); "
        "default: what the format says (tm.read)",
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
    """``tmeatlas run``: read the input (or resume from ``--out``), run :func:`tmeatlas.run`."""
    import anndata as ad

    from ._core.chunks import read_h5ad_lazy
    from ._errors import InvalidInputError
    from ._pipeline import run
    from ._readers import read_input

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
    adata = read_input(src, kind=args.input_kind, microns_per_unit=args.microns_per_unit, lazy=args.lazy)
    if previous.exists() and force_arg is not True:
        adata = _resume(adata, previous, args, read)
    run(
        adata, sample_key=args.sample_key, spatial=args.spatial, spots=args.spots, therapies=_list(args.therapies), out=out,
        layer=args.layer, gene_symbols=args.gene_symbols, steps=_list(args.steps), skip=_list(args.skip) or (),
        force=force_arg, integrate=args.integrate, simulate=_list(args.simulate) or (), report=not args.no_report,
        rng=args.seed, n_jobs=args.n_jobs, progress=not args.quiet,
    )  # fmt: skip
    if not args.quiet:
        print(f"tmeatlas run: wrote {out}/ (report: {out / 'report' / 'index.html'})", file=sys.stderr)


def _resume(adata, previous: Path, args, read):
    """The atlas in ``--out`` when it was made from this same input (cell names and data fingerprint),
    so the run resumes there; otherwise the new input, and the outputs are replaced.
    """
    from ._errors import InvalidInputError, TmeatlasError
    from ._pipeline import input_fingerprint

    try:
        old = read(previous)
        recorded = str(old.uns["pipeline"]["input"].get("data_fingerprint", ""))
    except Exception as e:  # any unreadable atlas means starting over
        print(f"tmeatlas run: {previous} cannot be read ({type(e).__name__}: {str(e)[:200]}); starting over from "
              "the input, and its outputs will be replaced", file=sys.stderr)  # fmt: skip
        return adata
    try:
        now = input_fingerprint(
            adata, sample_key=args.sample_key, layer=args.layer, gene_symbols=args.gene_symbols
        )
    except TmeatlasError:
        now = None  # the run's own checks will say what is wrong with the input
    if now is None or len(old.obs_names) != adata.n_obs or not (old.obs_names == adata.obs_names).all():
        if now is not None:
            raise InvalidInputError(
                f"{previous} holds results for other cells than {args.input}; pass a new --out, or --force to start over."
            )
        return adata
    if now != recorded:
        if not args.quiet:
            print(f"tmeatlas run: the input changed since {previous} was made (same cells, other data): starting "
                  "over from the input; the outputs will be replaced", file=sys.stderr)  # fmt: skip
        return adata
    if not args.quiet:
        print(f"tmeatlas run: resuming from {previous}", file=sys.stderr)
    return old


def main(argv: list[str] | None = None) -> int:
    """Run the ``tmeatlas`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit status."""
    args = _parser().parse_args(argv)
    from ._errors import TmeatlasError
    from ._pipeline import PipelineError

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
    except PipelineError as e:  # a step failed: the other steps' results are written
        print(f"tmeatlas: error: {e}", file=sys.stderr)
        return EXIT_STEP_FAILED
    except TmeatlasError as e:  # bad arguments or input, found before any work
        print(f"tmeatlas: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
