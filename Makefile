# NucEL developer commands. `make test` is the one test command (README "Tests"); CI runs .ci/run.
PYTHON ?= python3
VENV := .venv
VENV_COMPAT := .venv-compat
# The local CPU wheel; installed first and then used as a constraint so no dependency pulls CUDA torch.
TORCH := torch==2.13.0
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTEST_ARGS ?=
# Tests that import only torch, transformers and this repo, so they also run under transformers 4.48.
COMPAT_TESTS := tests/modeling/test_remote_code.py tests/tokenization/test_tokenizer_remote_code.py \
	tests/modeling/test_model_contract.py tests/hub_cards/test_publish_formats.py \
	tests/hub_cards/test_hub_folders_before_the_move.py

# The demo genome: a 2.3-Mbp slice of hg38 chr2 and a 22-Mbp slice of hg19 chr22 (read in place, never copied).
GENOMES := ../shared/data/genomes
DEMO_FASTA := $(GENOMES)/hg38_chr2_1-2333275.fa.gz $(GENOMES)/hg19_chr22_1-22000000.fa.gz
DEMO_DIR := runs/demo
# One process, settings given so accelerate asks nothing; the pretraining config picks bf16 when CUDA is there.
# --quiet: on bad input the script's one `error: ...` line is all that is printed (no launcher traceback).
# accelerate launch sets OMP_NUM_THREADS=1 unless told otherwise: on 2 cores that halves CPU training speed.
CPU_THREADS := $(shell nproc 2>/dev/null || echo 1)
LAUNCH := $(VENV)/bin/accelerate launch --quiet --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
	--num_cpu_threads_per_process $(CPU_THREADS)

.PHONY: test test-compat lint demo benchmark clean

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# transformers 4.48.x: the oldest release the remote-code files support.
$(VENV_COMPAT)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(VENV_COMPAT)/bin/python || $(PYTHON) -m venv $(VENV_COMPAT)
	$(VENV_COMPAT)/bin/pip install -q $(TORCH)
	$(VENV_COMPAT)/bin/pip install -q -c constraints.txt "transformers>=4.48,<4.49" "tokenizers<0.22" pytest numpy safetensors
	$(VENV_COMPAT)/bin/pip install -q --no-deps -e .
	touch $@

test: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/python -m pytest -q tests $(PYTEST_ARGS)

# ruff, with the rules in pyproject.toml ([tool.ruff]).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# Remote-code loading across versions: saved by 5.x -> loaded by 4.48, and saved by 4.48 -> loaded by 4.48 and 5.x.
test-compat: $(VENV)/.installed $(VENV_COMPAT)/.installed
	$(OFFLINE) NUCEL_OTHER_PYTHON=$(abspath $(VENV_COMPAT))/bin/python $(VENV)/bin/python -m pytest -q $(COMPAT_TESTS)
	$(OFFLINE) NUCEL_OTHER_PYTHON=$(abspath $(VENV))/bin/python $(VENV_COMPAT)/bin/python -m pytest -q $(COMPAT_TESTS)

DEMO_TASK := ../shared/data/gue/prom_core_tata
DEMO_MODELS := $(DEMO_DIR)/discriminator random-init:$(DEMO_DIR)/discriminator onehot-cnn
# The discriminator's cell (benchmark.py names cells <model>-<hash of the resolved folder>): a shell glob.
DEMO_RESULTS := $(DEMO_DIR)/finetune/prom_core_tata/runs_demo_discriminator-*/results.json

# 1. Pretrain tiny ELECTRA on the demo genome (~5 min on 2 cores) and export discriminator/ + generator/.
# 2. Fine-tune the discriminator on GUE prom_core_tata beside random-init and the one-hot CNN; print the table.
# 3. Assemble a Hub folder for the discriminator (card with the fine-tuning results), checked in a fresh process.
# Re-running continues: pretraining resumes (or only re-exports) and finished fine-tuning cells are reused.
# `rm -rf runs/demo` starts over.
demo: $(VENV)/.installed
	$(OFFLINE) $(LAUNCH) training/pretrain.py --config training/configs/tiny.yaml --fasta $(DEMO_FASTA) \
		--output-dir $(DEMO_DIR) --resume
	$(OFFLINE) $(VENV)/bin/python training/benchmark.py --tasks $(DEMO_TASK) --models $(DEMO_MODELS) \
		--output-dir $(DEMO_DIR)/finetune --seeds 42 43 44 --eval-steps 100 --quiet
	$(OFFLINE) $(VENV)/bin/nucel-publish --model $(DEMO_DIR)/discriminator --output-dir $(DEMO_DIR)/hub \
		--repo-id nucel/nucel-demo --results $(DEMO_RESULTS)

benchmark: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/python benchmarks/train_step.py
	$(OFFLINE) $(VENV)/bin/python benchmarks/pretrain_throughput.py

clean:
	rm -rf $(VENV) $(VENV_COMPAT) .pytest_cache
