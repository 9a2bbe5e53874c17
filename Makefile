# NucEL developer commands. `make test` is the one test command (README "Tests"); CI runs .ci/run.
PYTHON ?= python3
VENV := .venv
VENV_COMPAT := .venv-compat
VENV_CORE := .venv-core
# The local CPU wheel, pinned in constraints.txt only: installed first by every venv, then constraints.txt keeps
# any dependency from pulling another (CUDA) torch.
TORCH := $(shell grep '^torch==' constraints.txt)
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

.PHONY: test test-fast test-core test-compat lint docs demo benchmark clean

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

# Everything but the tests marked slow (setup.cfg's `slow` marker), for a check in about 2 minutes on 2 CPU cores.
test-fast: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/python -m pytest -q -m "not slow" tests $(PYTEST_ARGS)

# The core install alone (`pip install nucel`, no extra): AutoModel/AutoTokenizer load a NucEL folder, `nucel --help`
# works, and a job that needs an extra says which in one line (tests/nucel/test_core_install.py).
$(VENV_CORE)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(VENV_CORE)/bin/python || $(PYTHON) -m venv $(VENV_CORE)
	$(VENV_CORE)/bin/pip install -q $(TORCH)
	$(VENV_CORE)/bin/pip install -q -c constraints.txt -e . pytest
	touch $@

test-core: $(VENV_CORE)/.installed
	$(OFFLINE) NUCEL_CORE_INSTALL=1 $(VENV_CORE)/bin/python -m pytest -q tests/nucel/test_core_install.py

# ruff, with the rules in pyproject.toml ([tool.ruff]).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# The docs site (mkdocs.yml, material theme): --strict turns a broken link, a missing page or a page left out of
# the navigation into a failure. Not --quiet: it hides the warnings that --strict counts, and the build passes.
# NO_MKDOCS_2_WARNING: the theme's end-of-life banner, which is about the theme, not this site.
# tests/test_docs.py runs every code block of README.md and docs/.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Remote-code loading across versions: saved by 5.x -> loaded by 4.48, and saved by 4.48 -> loaded by 4.48 and 5.x.
test-compat: $(VENV)/.installed $(VENV_COMPAT)/.installed
	$(OFFLINE) NUCEL_OTHER_PYTHON=$(abspath $(VENV_COMPAT))/bin/python $(VENV)/bin/python -m pytest -q $(COMPAT_TESTS)
	$(OFFLINE) NUCEL_OTHER_PYTHON=$(abspath $(VENV))/bin/python $(VENV_COMPAT)/bin/python -m pytest -q $(COMPAT_TESTS)

DEMO_TASK := ../shared/data/gue/prom_core_tata
DEMO_MODELS := $(DEMO_DIR)/discriminator random-init:$(DEMO_DIR)/discriminator onehot-cnn
# The discriminator's cell (nucel benchmark names cells <model>-<hash of the resolved folder>): a shell glob.
DEMO_RESULTS := $(DEMO_DIR)/finetune/prom_core_tata/runs_demo_discriminator-*/results.json

# 1. Pretrain tiny ELECTRA on the demo genome (~5 min on 2 cores) and export discriminator/ + generator/.
# 2. Fine-tune the discriminator on GUE prom_core_tata beside random-init and the one-hot CNN; print the table.
# 3. Assemble a Hub folder for the discriminator (card with the fine-tuning results), checked in a fresh process.
# Re-running continues: pretraining resumes (or only re-exports) and finished fine-tuning cells are reused.
# `rm -rf runs/demo` starts over. Every step runs --quiet: what is printed is the demo's own step lines, each
# command's own lines (what it runs, what it wrote; no bars, no library messages) and the fine-tuning table.
demo: $(VENV)/.installed
	@echo "demo 1/3: pretraining tiny ELECTRA on the demo genome into $(DEMO_DIR) (~5 min on 2 cores)"
	@$(OFFLINE) $(LAUNCH) -m nucel pretrain --config training/configs/tiny.yaml --fasta $(DEMO_FASTA) \
		--output-dir $(DEMO_DIR) --resume --quiet
	@echo "demo 2/3: fine-tuning on $(notdir $(DEMO_TASK)), 3 seeds per model: $(DEMO_MODELS) (~30 min on 2 cores)"
	@$(OFFLINE) $(VENV)/bin/nucel benchmark --tasks $(DEMO_TASK) --models $(DEMO_MODELS) \
		--output-dir $(DEMO_DIR)/finetune --seeds 42 43 44 --eval-steps 100 --quiet
	@echo "demo 3/3: a Hub folder for the discriminator, with the fine-tuning results in its card"
	@$(OFFLINE) $(VENV)/bin/nucel publish --model $(DEMO_DIR)/discriminator --output-dir $(DEMO_DIR)/hub \
		--repo-id nucel/nucel-demo --results $(DEMO_RESULTS) --quiet

benchmark: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/python benchmarks/train_step.py
	$(OFFLINE) $(VENV)/bin/python benchmarks/pretrain_throughput.py

clean:
	rm -rf $(VENV) $(VENV_COMPAT) $(VENV_CORE) .pytest_cache site
