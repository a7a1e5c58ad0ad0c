"""What ``brainkit bench`` runs: a preset is a list of (recipe, recipe preset, dataset) entries and the seeds.

Every entry is one ``brainkit run RECIPE --preset P --set ...`` per seed, so the benchmark runs each method through
the one run system and keeps each run folder. The methods of one recipe share one run, hence one split: its
baselines and ablations meet exactly the test data its method meets. A seed sets the recipe's ``BENCH_SEEDS`` keys
(what each redraws is said beside them, e.g. :attr:`brainkit.recipes.lite_mind.LiteMindRecipe.BENCH_SEEDS`);
a dataset's split is the dataset's own (nsd_like's test images, hcp_movie_like's test volumes), the same for every
recipe that reads it.

Presets:
- ``testing``: every recipe's ``testing`` preset on its built-in data (seconds each; the tests' run).
- ``cpu_small``: every method and baseline at a reduced ``cpu_small`` size (fewer epochs where a recipe's
  ``cpu_small`` takes tens of minutes on 2 cores), each on the built-in data it was made for, nsd_like in both
  generative options, Lite-Mind and the linear encoding model on hcp_movie_like too; docs/benchmark.md gives its
  time.
- ``full``: every recipe's own ``cpu_small`` preset on every built-in dataset it can read (hours on 2 cores).

Pairs of a recipe and a compatible built-in dataset that a preset leaves out are listed on the page with the
reason (:data:`NOT_RUN` or "not in this preset").
"""

from __future__ import annotations

from dataclasses import dataclass

from brainkit.errors import ConfigError


@dataclass(frozen=True)
class BenchEntry:
    """One recipe on one dataset: ``brainkit run RECIPE --preset PRESET`` with ``data`` (the dataset's overrides,
    replaced when the user names a dataset) and ``overrides`` (sizes; kept), once per seed. ``variant`` names a
    dataset option in the table (``realistic``), ``""`` for the dataset as it is."""

    recipe: str
    preset: str
    dataset: str
    variant: str = ""
    data: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The dataset as the table names it: ``nsd_like`` or ``nsd_like (realistic)``."""
        return f"{self.dataset} ({self.variant})" if self.variant else self.dataset

    @property
    def slug(self) -> str:
        """The entry's folder name under ``OUT/runs``."""
        return "-".join(part for part in (self.recipe, self.dataset, self.variant) if part)


@dataclass(frozen=True)
class BenchPreset:
    entries: tuple[BenchEntry, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    about: str = ""


REALISTIC = ("data.options.generative=realistic",)
LITE_MIND_REALISTIC = "cpu_small_realistic"  # its targets: the features the realistic option does not use

# (recipe, dataset) -> why no preset runs it: the recipe refuses that dataset (what it says when tried)
HCP = ("data.name=hcp_movie_like",)
HCP_SUBJECT = (*HCP, "data.subject=sub01")  # one-subject recipes: its first subject

# (recipe, dataset) -> why no preset runs it: the recipe refuses that dataset (what it says when tried)
NOT_RUN = {
    ("clip_mused", "nsd_like"): "nsd_like has no category labels (CLIP-MUSED decodes multi-label categories)",
}

TESTING = BenchPreset(
    entries=(
        BenchEntry("lite_mind", "testing", "nsd_like"),
        BenchEntry("clip_mused", "testing", "hcp_movie_like"),
        BenchEntry("linear_encoding", "testing", "nsd_like"),
        BenchEntry("vis_dec", "testing", "nsd_like"),
        BenchEntry("sim", "testing", "movie_surface_like"),
        BenchEntry("vsmae", "testing", "rest_surface"),
        BenchEntry("brain_mae", "testing", "hcp_cohort"),
    ),
    about="every recipe's testing preset (tiny sizes, seconds per run): checks the machinery, ranks nothing",
)

CPU_SMALL = BenchPreset(
    entries=(
        # Lite-Mind + ridge + MindEye MLP (the demo's three decoders), 20 of the demo's 50 epochs
        BenchEntry("lite_mind", "demo", "nsd_like", overrides=("training.epochs=20",)),
        BenchEntry(
            "lite_mind", "demo_realistic", "nsd_like", "realistic", REALISTIC, ("training.epochs=20",)
        ),
        BenchEntry(
            "lite_mind", "demo", "hcp_movie_like", data=HCP_SUBJECT, overrides=("training.epochs=20",)
        ),
        BenchEntry("clip_mused", "cpu_small", "hcp_movie_like", overrides=("training.epochs=5",)),
        BenchEntry("linear_encoding", "cpu_small", "nsd_like", overrides=("training.epochs=10",)),
        BenchEntry(
            "linear_encoding", "cpu_small", "nsd_like", "realistic", REALISTIC, ("training.epochs=10",)
        ),
        BenchEntry(
            "linear_encoding", "cpu_small", "hcp_movie_like", data=HCP, overrides=("training.epochs=10",)
        ),
        BenchEntry(
            "vis_dec",
            "cpu_small",
            "nsd_like",
            overrides=(
                "image_pretrain.epochs=3",
                "vae_training.epochs=4",
                "unet_training.epochs=8",
                "finetune.epochs=3",
            ),
        ),  # fmt: skip
        BenchEntry("sim", "cpu_small", "movie_surface_like", overrides=("vsmae.training.epochs=20",)),
        BenchEntry("vsmae", "cpu_small", "rest_surface", overrides=("training.epochs=20",)),
        BenchEntry("brain_mae", "cpu_small", "hcp_cohort", overrides=("training.epochs=6",)),
    ),
    about="every method and baseline at a reduced cpu_small size (fewer epochs than the recipes' own cpu_small), "
    "each on the built-in data it was made for; nsd_like in both generative options",
)

FULL = BenchPreset(
    entries=(
        BenchEntry("lite_mind", "demo", "nsd_like"),
        BenchEntry("lite_mind", "demo_realistic", "nsd_like", "realistic", REALISTIC),
        BenchEntry("lite_mind", "demo", "hcp_movie_like", data=HCP_SUBJECT),
        BenchEntry("clip_mused", "cpu_small", "hcp_movie_like"),
        BenchEntry("linear_encoding", "cpu_small", "nsd_like"),
        BenchEntry("linear_encoding", "cpu_small", "nsd_like", "realistic", REALISTIC),
        BenchEntry("linear_encoding", "cpu_small", "hcp_movie_like", data=HCP),
        BenchEntry("vis_dec", "cpu_small", "nsd_like"),
        BenchEntry("vis_dec", "cpu_small", "nsd_like", "realistic", REALISTIC),
        BenchEntry("vis_dec", "cpu_small", "hcp_movie_like", data=HCP_SUBJECT),
        BenchEntry("sim", "cpu_small", "movie_surface_like"),
        BenchEntry("vsmae", "cpu_small", "rest_surface"),
        BenchEntry("brain_mae", "cpu_small", "hcp_cohort"),
    ),
    about="every recipe's own cpu_small preset on every built-in dataset it reads (hours on 2 cores)",
)

PRESETS = {"testing": TESTING, "cpu_small": CPU_SMALL, "full": FULL}


def bench_preset(name: str) -> BenchPreset:
    if name not in PRESETS:
        raise ConfigError(f"brainkit bench has no preset {name!r}; presets: {', '.join(PRESETS)}.")
    return PRESETS[name]


__all__ = ["BenchEntry", "BenchPreset", "NOT_RUN", "PRESETS", "bench_preset"]
