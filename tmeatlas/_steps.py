"""The steps of :func:`tmeatlas.run` in one registry.

Each step is one :class:`StepSpec` in :data:`STEPS`, in pipeline order: its name, progress title,
methods text and citation, the ``uns`` entry whose parameters the report shows, the results that
show it is done (for skipping on a rerun) and that its figures draw from, the figures it draws,
where it applies (single cells only, spots only, with coordinates, on request) and the steps it
needs (:data:`NEEDS`) or reads when present (:data:`USES`). The step *functions*, built from the
run's arguments, are in :func:`tmeatlas._pipeline._plan`, looked up by name. The pipeline's order,
the methods section of the report (:data:`METHODS`, :data:`STEP_UNS`), the figures' availability
(:func:`shown_results`) and the skipping of done steps (:func:`has_result`) all read this registry.

A new tool joins the pipeline as one entry here plus its step function in ``_pipeline._plan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._keys import OBS, OBSM, UNS
from ._names import safe_name

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "BY_NAME",
    "CELL_STEPS",
    "METHODS",
    "NEEDS",
    "STEPS",
    "STEP_ORDER",
    "STEP_UNS",
    "USES",
    "StepSpec",
    "combination_key",
    "has_result",
    "shown_results",
    "simulation_key",
]

#: where a result lives: an AnnData slot (``"obs"``, ``"var"``, ``"obsm"``, ``"uns"``) and a key in it
Where = tuple[str, str]


@dataclass(frozen=True)
class StepSpec:
    """One step of :func:`tmeatlas.run`, as the pipeline, its record and its report know it."""

    #: the step's name (``steps=``, ``skip=``, ``force=`` and ``uns["pipeline"]["steps"]``)
    name: str
    #: the progress line (``_plan`` words it for the run where it depends on the input)
    title: str
    #: what the step does, for the report's methods section; references that belong to one part of
    #: the method stay inline
    method: str
    #: the publication(s) the step rests on, closing its methods line (``""``: none, or inline)
    citation: str = ""
    #: the ``uns`` entry whose ``params`` the methods line shows
    uns: str | None = None
    #: results that must all be present for the step's result to count as done (a rerun may skip it);
    #: empty where the test depends on the run's arguments (``_plan`` supplies it)
    present: tuple[Where, ...] = ()
    #: the result whose presence makes :func:`~tmeatlas._report.write_figures` draw the step's figures
    shows: Where | None = None
    #: the figures drawn from the step's results (``*``: one per sample or therapy)
    figures: tuple[str, ...] = ()
    #: needs single cells: not planned for spot data (Visium, ST), where each observation mixes cells
    cells_only: bool = False
    #: only for spot data
    spots_only: bool = False
    #: needs coordinates: planned only when the spatial steps run
    spatial: bool = False
    #: planned only when this argument of :func:`tmeatlas.run` is given (e.g. ``"simulate"``)
    only_with: str | None = None
    #: steps it cannot do without: when one is not applicable, failed or was not run, neither is it
    needs: tuple[str, ...] = ()
    #: steps whose results it reads when present (a change there reruns it)
    uses: tuple[str, ...] = ()

    @property
    def methods_line(self) -> str:
        """The step's line in the report's methods section: the method and its citation."""
        return f"{self.method} ({self.citation})." if self.citation else self.method


_TIROSH = "Tirosh I et al. Science 352:189, 2016"

#: every step of :func:`tmeatlas.run`, in the order they run
STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        "qc", "QC metrics and outlier flags (5 MADs per sample)",
        "Per-cell total counts, detected genes and mitochondrial share; cells more than 5 median absolute "
        "deviations from their sample's median (log scale) are flagged, not removed",
        citation="Germain PL, Sonrel A, Robinson MD. Genome Biol 21:226, 2020", uns=UNS.qc,
        present=(("obs", OBS.qc_outlier),),
    ),
    StepSpec(
        "gene_positions", "gene positions (GRCh38)", "Genes placed on GRCh38 from the shipped annotation",
        citation="xclone GRCh38 table completed with NCBI Gene; arms from UCSC cytoBand", uns=UNS.gene_positions,
        present=(("var", "chromosome"),),
    ),
    StepSpec(
        "normalize", "normalisation",
        "Counts scaled to 10,000 per cell and log1p-transformed; raw counts kept in layers['counts']",
        citation="Wolf FA, Angerer P, Theis FJ. Genome Biol 19:15, 2018",
    ),
    StepSpec(
        "embedding", "highly variable genes, PCA, neighbours, UMAP, Leiden",
        "Highly variable genes, PCA, 15-nearest-neighbour graph, UMAP (McInnes L, Healy J, Melville J. "
        "arXiv:1802.03426, 2018) and Leiden clusters",
        citation="Traag VA, Waltman L, van Eck NJ. Sci Rep 9:5233, 2019",
        present=(("obsm", "X_umap"), ("obs", OBS.leiden)), shows=("obsm", "X_umap"),
        figures=("umap_samples",), needs=("normalize",),
    ),
    StepSpec(
        "cnv", "CNV inference (automatic normal reference per sample)",
        "Copy number inferred from expression averaged along the genome in windows, relative to an automatically "
        "chosen normal reference per sample",
        citation=f"Patel AP et al. Science 344:1396, 2014; {_TIROSH}", uns=UNS.cnv,
        present=(("obsm", OBSM.cnv),), shows=("obsm", OBSM.cnv), figures=("cnv_heatmap",),
        needs=("gene_positions", "normalize"),
    ),
    StepSpec(
        "malignant", "malignant calls (calibrated probability)",
        "Malignant calls from chromosome-arm shifts that are coherent within a sample and a calibrated "
        "two-component mixture of CNV evidence; probability in obs['malignant_prob']",
        citation=f"CNV signal and correlation as in {_TIROSH}; Puram SV et al. Cell 171:1611, 2017",
        uns=UNS.malignant, present=(("obs", OBS.malignant),), shows=("obs", OBS.malignant),
        figures=("malignant_calls",), cells_only=True, needs=("cnv",),
    ),
    StepSpec(
        "clones", "CNV subclones per sample",
        "Subclones by recursive splitting of malignant cells on arm-level CNV differences that pass a test.",
        uns=UNS.cnv_clones, present=(("obs", OBS.cnv_clone),), shows=("uns", UNS.cnv_clones),
        figures=("clone_tree",), cells_only=True, needs=("malignant",),
    ),
    StepSpec(
        "cell_types", "compartments and cell types (markers + CNV calls)",
        "Marker-based compartments and cell types from the shipped, cited marker library (sources below); "
        "malignant calls take precedence for the Malignant label.",
        uns=UNS.annotate, present=(("obs", OBS.cell_type),), shows=("obs", OBS.cell_type),
        figures=("umap_compartments", "composition", "marker_dotplot", "spatial_cell_types"),
        cells_only=True, needs=("normalize",), uses=("malignant", "embedding"),
    ),
    StepSpec(
        "signatures", "signature scores (whole library, one sparse pass)",
        f"Signature scores with the control-gene method ({_TIROSH}; scanpy score_genes), all sets in one "
        "sparse pass.",
        uns=UNS.signatures, present=(("obsm", OBSM.signatures),), figures=("signatures",), needs=("normalize",),
    ),
    StepSpec(
        "stemness", "stemness (gene counts + stemness programs)",
        "Stemness combines the number of detected genes (Gulati GS et al. Science 367:405, 2020) with stemness "
        "programs, compared within malignant cells of a sample.",
        uns=UNS.stemness, present=(("obs", OBS.stemness),), cells_only=True, needs=("cell_types",),
        uses=("malignant",),
    ),
    StepSpec(
        "tumor_score", "spot tumour score (expression, copy number, neighbours)",
        "Spot tumour score: robust z-scores of epithelial minus myoepithelial marker share and log counts, plus "
        f"each spot's CNV correlation with its section's tumour profile ({_TIROSH}) against a diploid reference "
        "of the most immune/stromal spots pooled over sections, averaged with the 8 nearest spots; sections "
        "shifted so their reference spots score 0, and a section whose top spots show no arm-level copy-number "
        "shift is flagged tumour-free and scored at or below 0.",
        uns=UNS.tumor_score, present=(("obs", OBS.tumor_score),), shows=("obs", OBS.tumor_score),
        figures=("spatial_tumor_score",), spots_only=True, spatial=True, needs=("gene_positions", "normalize"),
    ),
    StepSpec(
        "interface", "tumour interface (signed distance, core / margin / stroma)",
        "Tumour share of each cell's 15 nearest cells, thresholded by Otsu's method (IEEE Trans Syst Man Cybern "
        "9:62, 1979); small tumour clusters are buds (Lugli A et al. Mod Pathol 30:1299, 2017); signed distance "
        "to the tumour boundary in microns; core / margin (100 um) / stroma.",
        uns=UNS.interface, present=(("obs", OBS.tumor_region),), shows=("obs", OBS.tumor_region),
        figures=("interface_profile",), cells_only=True, spatial=True, needs=("cell_types",), uses=("malignant",),
    ),
    StepSpec(
        "immune_phenotype", "immune phenotype per sample (CD8 T densities)",
        "Inflamed when CD8 T cells in the tumour core reach 100 cells/mm2, else excluded when the margin reaches "
        "200 cells/mm2, else desert (J Immunother Cancer 12:e009550, 2024, doi:10.1136/jitc-2024-009550); p: the "
        "call's probability under the counting error of the CD8 densities (Poisson, Jeffreys prior).",
        uns=UNS.immune_phenotype, present=(("obs", OBS.immune_phenotype),), shows=("uns", UNS.immune_phenotype),
        figures=("immune_phenotypes",), cells_only=True, spatial=True, needs=("interface",),
    ),
    StepSpec(
        "niches", "spatial niches shared across samples (number chosen by stability)",
        "Niches by k-means on multi-scale neighbourhood composition and tumour proximity, pooled over samples; "
        "the number chosen by subsample stability",
        citation="Lange T et al. Neural Comput 16:1299, 2004", uns=UNS.niches, present=(("obs", OBS.niche),),
        shows=("obs", OBS.niche), figures=("spatial_niches", "niche_composition"), cells_only=True, spatial=True,
        needs=("cell_types",), uses=("interface",),
    ),
    StepSpec(
        "heterogeneity", "tumour heterogeneity per sample (clones, states, spatial mixing)",
        "Per-sample heterogeneity of the malignant cells with cell-resampling intervals: Shannon diversity of the "
        "CNV subclones (Miller-Madow corrected) and the effective number of clones, the diversity of program "
        "states and the share of it between clones, and the spatial mixing of clones.",
        uns=UNS.heterogeneity, present=(("uns", UNS.heterogeneity),), shows=("uns", UNS.heterogeneity),
        figures=("heterogeneity", "clone_states", "clone_mixing"), cells_only=True, needs=("clones",),
    ),
    StepSpec(
        "checkpoints", "checkpoint receptor-ligand interactions per sample",
        "Checkpoint receptor-ligand pairs between cell types per sample: expression fractions, a strength and a "
        "permutation p-value (labels shuffled), restricted to spatial neighbours when coordinates exist.",
        uns=UNS.checkpoint_interactions, present=(("uns", UNS.checkpoint_interactions),),
        shows=("uns", UNS.checkpoint_interactions), figures=("checkpoint_interactions",), cells_only=True,
        needs=("cell_types",), uses=("interface", "niches"),
    ),
    StepSpec(
        "immunotherapy", "immunotherapy benefit per sample (published biomarkers)",
        "Immunotherapy benefit per sample from published biomarkers, each in the cells and setting it was "
        "validated in: TCF7+ and progenitor-exhausted shares of CD8 T cells (Sade-Feldman M et al. Cell 175:998, "
        "2018), exhausted CD8 share, spatial immune phenotype (Chen DS & Mellman I, Nature 541:321, 2017) and, in "
        "whole tumours only, CD8 infiltration, PD-L1+ tumour/myeloid share, T-cell-inflamed GEP (Ayers M et al. "
        "J Clin Invest 127:2930, 2017), MHC-I antigen presentation and TLS; standardised across samples, fixed "
        "literature weights.",
        uns=UNS.immunotherapy_benefit, present=(("uns", UNS.immunotherapy_benefit),), cells_only=True,
        needs=("cell_types",), uses=("malignant", "immune_phenotype"),
    ),
    StepSpec(
        "therapy", "therapy survival of every CNV subclone",
        "Per-cell survival probability from the therapy's targets (present or absent only where the sequencing "
        "depth can tell, against the ambient level), sensitivity and resistance programs (relative to the "
        "sample's malignant cells) and, for immunotherapy, the sample's benefit; per subclone a call (survives, "
        "responds or undetermined) with an interval and ranked reasons. Therapy sources below.",
        uns=UNS.therapy_survival, present=(("uns", UNS.therapy_survival),), shows=("uns", UNS.therapy_survival),
        figures=("therapy_survival", "survival_reasons_*"), cells_only=True, needs=("cell_types",),
        uses=("clones", "immune_phenotype", "signatures"),
    ),
    StepSpec(
        "combinations", "per-sample therapy combinations leaving no subclone behind",
        "Smallest therapy sets after which every malignant subclone above 5% of its sample is shown to respond, "
        "penalising targets expressed in normal compartments; exact integer programming (scipy milp).",
        figures=("combination_cover_*",), cells_only=True, needs=("therapy",),
    ),
    StepSpec(
        "simulation", "continuous vs adaptive dosing",
        "Continuous vs adaptive dosing in a Lotka-Volterra competition model of the subclones",
        citation="Gatenby RA et al. Cancer Res 69:4894, 2009; Zhang J et al. Nat Commun 8:1816, 2017",
        uns=UNS.therapy_simulation, shows=("uns", UNS.therapy_simulation), figures=("therapy_simulation",),
        cells_only=True, only_with="simulate", needs=("therapy",),
    ),
)  # fmt: skip

#: the registry entry of each step, by name
BY_NAME = {s.name: s for s in STEPS}
#: the order of the steps
STEP_ORDER = tuple(s.name for s in STEPS)
#: steps that need single cells: not planned for spot data (Visium, ST), where each observation
#: mixes several cells
CELL_STEPS = tuple(s.name for s in STEPS if s.cells_only)
#: the steps each step cannot do without: when one of them is not applicable, failed or was not
#: run, the step is not run either, with that reason
NEEDS = {s.name: s.needs for s in STEPS if s.needs}
#: the steps whose results a step reads when they are present (a change there reruns it)
USES = {s.name: s.uses for s in STEPS if s.uses}
#: what each step does and what it rests on (the report's methods section)
METHODS = {s.name: s.methods_line for s in STEPS}
#: the uns entry whose ``params`` a step's methods line shows
STEP_UNS = {s.name: s.uns for s in STEPS if s.uns is not None}


def _present(adata: AnnData, where: Where) -> bool:
    """Whether ``adata`` holds the result at ``where`` (slot, key)."""
    slot, key = where
    return key in getattr(adata, slot)


def has_result(adata: AnnData, spec: StepSpec) -> bool:
    """Whether every result in ``spec.present`` is in ``adata`` (the step's result is there)."""
    return all(_present(adata, w) for w in spec.present)


def shown_results(adata: AnnData) -> dict[str, bool]:
    """``{step: whether the result its figures draw from is in adata}`` for the steps with figures."""
    return {s.name: _present(adata, s.shows) for s in STEPS if s.shows is not None}


def combination_key(sample) -> str:
    """``uns`` key of one sample's combination cover (:func:`~tmeatlas._names.safe_name` of the sample)."""
    return f"{UNS.combination_cover}_{safe_name(sample)}"


def simulation_key(therapy: str) -> str:
    """``uns`` key of one therapy's dosing simulation when several are simulated."""
    return f"{UNS.therapy_simulation}_{safe_name(therapy)}"
