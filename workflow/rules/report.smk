rule plot_layer_curves:
    input:
        "results/scores/{dataset}/{model}/{metric}.nc",
    output:
        report(
            "results/figures/{dataset}/{model}/{metric}.png",
            caption="../report/layer_curves.rst",
            category=metric_category,
            subcategory="{dataset}",
            labels={"model": "{model}", "metric": "{metric}", "figure": "layer curves"},
        ),
        "results/figures/{dataset}/{model}/{metric}.svg",
    params:
        settings=caption_settings(),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/{model}/{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_model_similarity:
    input:
        "results/model_similarity/{stimset}/{model_a}__{model_b}.nc",
    output:
        report(
            "results/figures/model_similarity/{stimset}/heatmaps/{model_a}__{model_b}.png",
            caption="../report/model_similarity.rst",
            category="Models",
            subcategory="{stimset}",
            labels={"models": "{model_a} x {model_b}", "figure": "layer heatmaps"},
        ),
        "results/figures/model_similarity/{stimset}/heatmaps/{model_a}__{model_b}.svg",
    params:
        settings=similarity_caption_settings(),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/model_similarity/{stimset}/heatmaps/{model_a}__{model_b}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_depth_correspondence:
    input:
        "results/model_similarity/{stimset}/{model_a}__{model_b}.nc",
    output:
        report(
            "results/figures/model_similarity/{stimset}/depth/{model_a}__{model_b}.png",
            caption="../report/depth_correspondence.rst",
            category="Models",
            subcategory="{stimset}",
            labels={"models": "{model_a} x {model_b}", "figure": "depth correspondence"},
        ),
        "results/figures/model_similarity/{stimset}/depth/{model_a}__{model_b}.svg",
    params:
        figure="depth",
        settings=similarity_caption_settings(),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/model_similarity/{stimset}/depth/{model_a}__{model_b}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_dataset_similarity:
    input:
        "results/dataset_similarity/{dataset_a}__{dataset_b}.nc",
    output:
        report(
            "results/figures/dataset_similarity/{dataset_a}__{dataset_b}.png",
            caption="../report/dataset_similarity.rst",
            category="Brain data",
            subcategory="dataset similarity",
            labels={"dataset": "{dataset_a} x {dataset_b}", "figure": "ROI similarity heatmaps"},
        ),
        "results/figures/dataset_similarity/{dataset_a}__{dataset_b}.svg",
    params:
        settings=similarity_caption_settings(),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/dataset_similarity/{dataset_a}__{dataset_b}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_rsa_rdms:
    input:
        "results/scores/{dataset}/{model}/rsa.nc",
    output:
        report(
            "results/figures/{dataset}/{model}/rsa_rdms.png",
            caption="../report/rsa_rdms.rst",
            category="RSA",
            subcategory="{dataset}",
            labels={"model": "{model}", "metric": "rsa", "figure": "RDM panels"},
        ),
        "results/figures/{dataset}/{model}/rsa_rdms.svg",
    params:
        figure="rdms",
        settings=caption_settings("rsa"),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/{model}/rsa_rdms.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_rsa_mds:
    input:
        "results/scores/{dataset}/{model}/rsa.nc",
    output:
        report(
            "results/figures/{dataset}/{model}/rsa_mds.png",
            caption="../report/rsa_mds.rst",
            category="RSA",
            subcategory="{dataset}",
            labels={"model": "{model}", "metric": "rsa", "figure": "RDM MDS"},
        ),
        "results/figures/{dataset}/{model}/rsa_mds.svg",
    params:
        figure="mds",
        settings=caption_settings("rsa"),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/{model}/rsa_mds.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_encoding_glass_brain:
    input:
        "results/scores/{dataset}/{model}/encoding.nc",
    output:
        report(
            "results/figures/{dataset}/{model}/encoding_glass_brain.png",
            caption="../report/encoding_glass_brain.rst",
            category="Encoding",
            subcategory="{dataset}",
            labels={"model": "{model}", "metric": "encoding", "figure": "best layer, glass brain"},
        ),
        "results/figures/{dataset}/{model}/encoding_glass_brain.svg",
    params:
        figure="glass_brain",
        settings=caption_settings("encoding"),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/{model}/encoding_glass_brain.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_variance_partition:
    input:
        "results/banded/{dataset}/{name}.nc",
    output:
        report(
            "results/figures/banded/{dataset}/{name}.png",
            caption="../report/variance_partition.rst",
            category="Encoding",
            subcategory="{dataset}",
            labels={"model": "{name}", "metric": "banded encoding", "figure": "variance partition"},
        ),
        "results/figures/banded/{dataset}/{name}.svg",
    params:
        settings=caption_settings("encoding"),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/banded/{dataset}/{name}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule collect_model_scores:
    input:
        unpack(summary_inputs),
    output:
        "results/summary/{dataset}/{metric}.nc",
    params:
        control_of=summary_controls,
    resources:
        **family_resources("light"),
    log:
        "results/logs/summary/{dataset}/{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/summary.py"


rule plot_model_comparison:
    input:
        "results/summary/{dataset}/{metric}.nc",
    output:
        report(
            "results/figures/{dataset}/models_{metric}.png",
            caption="../report/model_comparison.rst",
            category=metric_category,
            subcategory="{dataset}",
            labels={"model": "all models", "metric": "{metric}", "figure": "models by relative depth"},
        ),
        "results/figures/{dataset}/models_{metric}.svg",
    params:
        figure="models",
        settings=caption_settings(),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/models_{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_summary_table:
    input:
        "results/summary/{dataset}/{metric}.nc",
    output:
        report(
            "results/figures/{dataset}/summary_{metric}.png",
            caption="../report/summary_table.rst",
            category="Summary",
            subcategory="{dataset}",
            labels={"metric": "{metric}", "figure": "best layer per model x ROI"},
        ),
        "results/figures/{dataset}/summary_{metric}.svg",
        "results/figures/{dataset}/summary_{metric}.csv",
    params:
        figure="table",
        settings=caption_settings(),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/summary_{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_stimuli:
    input:
        "results/stimuli/{stimset}.nc",
    output:
        report(
            "results/figures/stimuli/{stimset}.png",
            caption="../report/stimuli.rst",
            category="Stimuli",
            labels={"stimulus set": "{stimset}", "figure": "categories and content"},
        ),
        "results/figures/stimuli/{stimset}.svg",
    params:
        figure="stimuli",
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/stimuli/{stimset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_brain_data:
    input:
        "results/brain/{dataset}.nc",
    output:
        report(
            "results/figures/brain/{dataset}.png",
            caption="../report/brain_data.rst",
            category="Brain data",
            subcategory="datasets",
            labels={"dataset": "{dataset}", "figure": "reliability, size and location of ROIs"},
        ),
        "results/figures/brain/{dataset}.svg",
    params:
        figure="brain_data",
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/brain/{dataset}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"


rule plot_encoding_surface:
    input:
        "results/scores/{dataset}/{model}/encoding.nc",
    output:
        report(
            "results/figures/{dataset}/{model}/encoding_surface.png",
            caption="../report/encoding_surface.rst",
            category="Encoding",
            subcategory="{dataset}",
            labels={"model": "{model}", "metric": "encoding", "figure": "maps on fsaverage5"},
        ),
        "results/figures/{dataset}/{model}/encoding_surface.svg",
    params:
        figure="surface",
        settings=caption_settings("encoding"),
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/{model}/encoding_surface.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"
