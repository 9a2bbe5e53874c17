"""GUE, the benchmark of the DNABERT-2 paper: its task folders and the test MCC the paper publishes for them.
Fine-tuning tables and model cards both compare against these numbers."""

# The GUE tasks as the shared data names their folders (../shared/data/README.md; the keys of
# PUBLISHED_GUE_MCC): a task folder of one of these names is named as a GUE task.
GUE_TASKS = {
    "prom_core_all": "human core promoter detection, 70 bp",
    "prom_core_notata": "human core promoter detection, promoters without a TATA box, 70 bp",
    "prom_core_tata": "human core promoter detection, promoters with a TATA box, 70 bp",
    **{f"tf_{n}": "human transcription-factor binding, 101 bp" for n in (0, 1, 2, 4)},
    **{f"mouse_{n}": "mouse transcription-factor binding, 101 bp" for n in (3, 4)},
}
# Test MCC x100 on GUE, model selected on dev: Zhou et al., "DNABERT-2: Efficient Foundation Model and Benchmark
# for Multi-Species Genome" (ICLR 2024), Table 4. Keys are the GUE task folder names.
PUBLISHED_GUE_MCC = {
    "DNABERT (3-mer)": {"prom_core_all": 70.92, "prom_core_notata": 69.82, "prom_core_tata": 78.15,
                        "tf_0": 67.95, "tf_1": 70.90, "tf_2": 60.51, "tf_4": 69.76, "mouse_3": 55.40,
                        "mouse_4": 41.97},
    "NT-2500M-multi": {"prom_core_all": 70.33, "prom_core_notata": 71.58, "prom_core_tata": 72.97,
                       "tf_0": 66.64, "tf_1": 70.28, "tf_2": 58.72, "tf_4": 69.34, "mouse_3": 69.44,
                       "mouse_4": 47.07},
    "DNABERT-2": {"prom_core_all": 69.37, "prom_core_notata": 68.04, "prom_core_tata": 74.17,
                  "tf_0": 71.99, "tf_1": 76.06, "tf_2": 66.52, "tf_4": 77.43, "mouse_3": 66.47, "mouse_4": 52.66},
}
SCALE = 100  # the table shows metrics x100, as the GUE paper does
