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
    log:
        "results/logs/figures/{dataset}/{model}/{metric}.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../../scripts/plot.py"
