rule plot_layer_curves:
    input:
        "results/scores/{dataset}/{model}/{metric}.nc",
    output:
        report(
            "results/figures/{dataset}/{model}/{metric}.png",
            caption="../report/layer_curves.rst",
            category="{metric}",
            subcategory="{dataset}",
            labels={"model": "{model}", "dataset": "{dataset}", "figure": "layer curves"},
        ),
        "results/figures/{dataset}/{model}/{metric}.svg",
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
            category="model similarity",
            subcategory="{stimset}",
            labels={"models": "{model_a} x {model_b}", "figure": "layer heatmaps"},
        ),
        "results/figures/model_similarity/{stimset}/heatmaps/{model_a}__{model_b}.svg",
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
            category="model similarity",
            subcategory="{stimset}",
            labels={"models": "{model_a} x {model_b}", "figure": "depth correspondence"},
        ),
        "results/figures/model_similarity/{stimset}/depth/{model_a}__{model_b}.svg",
    params:
        figure="depth",
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
            category="dataset similarity",
            labels={"datasets": "{dataset_a} x {dataset_b}", "figure": "ROI heatmaps"},
        ),
        "results/figures/dataset_similarity/{dataset_a}__{dataset_b}.svg",
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
            category="rsa",
            subcategory="{dataset}",
            labels={"model": "{model}", "dataset": "{dataset}", "figure": "RDM panels"},
        ),
        "results/figures/{dataset}/{model}/rsa_rdms.svg",
    params:
        figure="rdms",
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
            category="rsa",
            subcategory="{dataset}",
            labels={"model": "{model}", "dataset": "{dataset}", "figure": "RDM MDS"},
        ),
        "results/figures/{dataset}/{model}/rsa_mds.svg",
    params:
        figure="mds",
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
            category="encoding",
            subcategory="{dataset}",
            labels={"model": "{model}", "dataset": "{dataset}", "figure": "best layer, glass brain"},
        ),
        "results/figures/{dataset}/{model}/encoding_glass_brain.svg",
    params:
        figure="glass_brain",
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
            category="encoding",
            subcategory="{dataset}",
            labels={"analysis": "{name}", "dataset": "{dataset}", "figure": "variance partition"},
        ),
        "results/figures/banded/{dataset}/{name}.svg",
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
            category="{metric}",
            subcategory="{dataset}",
            labels={"model": "all models", "dataset": "{dataset}", "figure": "models by relative depth"},
        ),
        "results/figures/{dataset}/models_{metric}.svg",
    params:
        figure="models",
    resources:
        **family_resources("light"),
    log:
        "results/logs/figures/{dataset}/models_{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"
