# Figures for the report. Every figure job draws all figures of one NetCDF file in one process
# (scripts/plot.py -> brainalign.figures.plot_many): Python and matplotlib are imported once per
# file, not once per figure. The figure rules share one definition (`use rule ... with:`).


rule plot_stimuli:
    input:
        "results/stimuli/{stimset}.nc",
    output:
        figure_outputs([("stimuli", "results/figures/stimuli/{stimset}")], "../report/stimuli.rst",
                       "Stimuli", None, {"stimulus set": "{stimset}"}),
    params:
        figures=figure_plan([("stimuli", "results/figures/stimuli/{stimset}")]),
        settings="",
    group:
        "light"
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/stimuli/{stimset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


use rule plot_stimuli as plot_brain_data with:
    input:
        "results/brain/{dataset}.nc",
    output:
        figure_outputs([("brain_data", "results/figures/brain/{dataset}")], "../report/brain_data.rst",
                       "Brain data", "datasets", {"dataset": "{dataset}"}),
    params:
        figures=figure_plan([("brain_data", "results/figures/brain/{dataset}")]),
        settings="",
    log:
        "results/logs/figures/brain/{dataset}.log",


MODEL_SIMILARITY_FIGURES = [
    ("heatmap", "results/figures/model_similarity/{stimset}/heatmaps/{model_a}__{model_b}"),
    ("depth", "results/figures/model_similarity/{stimset}/depth/{model_a}__{model_b}"),
]


use rule plot_stimuli as plot_model_similarity with:
    input:
        "results/model_similarity/{stimset}/{model_a}__{model_b}.nc",
    output:
        figure_outputs(MODEL_SIMILARITY_FIGURES[:1], "../report/model_similarity.rst", "Models", "{stimset}",
                       {"models": "{model_a} x {model_b}"})
        + figure_outputs(MODEL_SIMILARITY_FIGURES[1:], "../report/depth_correspondence.rst", "Models",
                         "{stimset}", {"models": "{model_a} x {model_b}"}),
    params:
        figures=figure_plan(MODEL_SIMILARITY_FIGURES),
        settings=similarity_caption_settings(),
    log:
        "results/logs/figures/model_similarity/{stimset}/{model_a}__{model_b}.log",


use rule plot_stimuli as plot_dataset_similarity with:
    input:
        "results/dataset_similarity/{dataset_a}__{dataset_b}.nc",
    output:
        figure_outputs([("dataset_heatmap", "results/figures/dataset_similarity/{dataset_a}__{dataset_b}")],
                       "../report/dataset_similarity.rst", "Brain data", "dataset similarity",
                       {"dataset": "{dataset_a} x {dataset_b}"}),
    params:
        figures=figure_plan([("heatmap", "results/figures/dataset_similarity/{dataset_a}__{dataset_b}")]),
        settings=similarity_caption_settings(),
    log:
        "results/logs/figures/dataset_similarity/{dataset_a}__{dataset_b}.log",


use rule plot_stimuli as plot_variance_partition with:
    input:
        "results/banded/{dataset}/{name}.nc",
    output:
        figure_outputs([("partition", "results/figures/banded/{dataset}/{name}")],
                       "../report/variance_partition.rst", "Encoding", "{dataset}",
                       {"model": "{name}", "metric": "banded encoding"}),
    params:
        figures=figure_plan([("partition", "results/figures/banded/{dataset}/{name}")]),
        settings=caption_settings("encoding"),
    log:
        "results/logs/figures/banded/{dataset}/{name}.log",


rule collect_model_scores:
    input:
        unpack(summary_inputs),
    output:
        update("results/summary/{dataset}/{metric}.nc"),
    params:
        control_of=summary_controls,
        model_info=summary_model_info,
    group:
        "light"
    resources:
        **family_resources("light"),
    log:
        "results/logs/summary/{dataset}/{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/summary.py"


use rule plot_stimuli as plot_model_comparison with:
    input:
        "results/summary/{dataset}/{metric}.nc",
    output:
        figure_outputs([("models", "results/figures/{dataset}/models_{metric}")], "../report/model_comparison.rst",
                       metric_category, "{dataset}", {"model": "all models", "metric": "{metric}"}),
    params:
        figures=figure_plan([("models", "results/figures/{dataset}/models_{metric}")]),
        settings=caption_settings(),
    log:
        "results/logs/figures/{dataset}/models_{metric}.log",


use rule plot_stimuli as plot_concept_depth with:
    input:
        "results/summary/{dataset}/{metric}.nc",
    output:
        figure_outputs([("concept_depth", "results/figures/{dataset}/concept_depth_{metric}")],
                       "../report/concept_depth.rst", metric_category, "{dataset}",
                       {"model": "all models", "metric": "{metric}"},
                       extra=["results/figures/{dataset}/concept_depth_{metric}.csv"]),
    params:
        figures=figure_plan([("concept_depth", "results/figures/{dataset}/concept_depth_{metric}")],
                            extra=["results/figures/{dataset}/concept_depth_{metric}.csv"]),
        settings=caption_settings(),
    log:
        "results/logs/figures/{dataset}/concept_depth_{metric}.log",


use rule plot_stimuli as plot_families with:
    input:
        "results/summary/{dataset}/{metric}.nc",
    output:
        figure_outputs([("families", "results/figures/{dataset}/families_{metric}")], "../report/families.rst",
                       "Summary", "{dataset}", {"metric": "{metric}"}),  # the summary table's labels
    params:
        figures=figure_plan([("families", "results/figures/{dataset}/families_{metric}")]),
        settings=caption_settings(),
    log:
        "results/logs/figures/{dataset}/families_{metric}.log",


use rule plot_stimuli as plot_geometry with:
    input:
        "results/geometry/{stimset}.nc",
    output:
        figure_outputs([("geometry", "results/figures/geometry/{stimset}")], "../report/geometry.rst",
                       "Geometry", "{stimset}", {"model": "all models", "stimulus set": "{stimset}"}),
    params:
        figures=figure_plan([("geometry", "results/figures/geometry/{stimset}")]),
        settings="",
    log:
        "results/logs/figures/geometry/{stimset}.log",


use rule plot_stimuli as plot_summary_table with:
    input:
        "results/summary/{dataset}/{metric}.nc",
    output:
        figure_outputs([("table", "results/figures/{dataset}/summary_{metric}")], "../report/summary_table.rst",
                       "Summary", "{dataset}", {"metric": "{metric}"},
                       extra=["results/figures/{dataset}/summary_{metric}.csv"]),
    params:
        figures=figure_plan([("table", "results/figures/{dataset}/summary_{metric}")],
                            extra=["results/figures/{dataset}/summary_{metric}.csv"]),
        settings=caption_settings(),
    log:
        "results/logs/figures/{dataset}/summary_{metric}.log",


# The figures of one scores file, in one job: the layer curves, the metric's own figures (registry
# ``figures``), and on volumetric data the per-voxel maps of metrics that have them (registry ``maps``).
for _metric in metric_names():
    for _volumetric in (False, True) if get_metric(_metric).maps else (None,):
        _stems = [(figure, figure_stem(figure)) for figure in score_figure_names_for(_metric, _volumetric)]

        rule:
            name:
                f"plot_{_metric}" + ("_maps" if _volumetric else "")
            input:
                "results/scores/{dataset}/{model}/{metric}.nc",
            output:
                figure_outputs(_stems, "../report/{figure}.rst", metric_category, "{dataset}",
                               {"model": "{model}", "metric": "{metric}"}),
            params:
                figures=figure_plan(_stems),
                settings=caption_settings(),
            wildcard_constraints:
                metric=_metric,
                dataset=dataset_pattern(_volumetric),
            group:
                "light"
            resources:
                **family_resources("light"),
            log:
                "results/logs/figures/{dataset}/{model}/{metric}.log",
            conda:
                "../../envs/analysis.yaml"
            script:
                "../../scripts/plot.py"
