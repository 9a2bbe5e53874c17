# NucEL developer commands. `make test` is the one test command (README "Tests"); CI runs .ci/run.
PYTHON ?= python3
VENV := .venv
VENV_COMPAT := .venv-compat
# The local CPU wheel; installed first and then used as a constraint so no dependency pulls CUDA torch.
TORCH := torch==2.13.0
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTEST_ARGS ?=
# Tests that import only torch, transformers and this repo, so they also run under transformers 4.48.
COMPAT_TESTS := tests/test_remote_code.py tests/test_tokenizer_remote_code.py

.PHONY: test test-compat benchmark clean

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# transformers 4.48.x: the oldest release the remote-code files support.
$(VENV_COMPAT)/.installed: constraints.txt
	test -x $(VENV_COMPAT)/bin/python || $(PYTHON) -m venv $(VENV_COMPAT)
	$(VENV_COMPAT)/bin/pip install -q $(TORCH)
	$(VENV_COMPAT)/bin/pip install -q -c constraints.txt "transformers>=4.48,<4.49" "tokenizers<0.22" pytest numpy safetensors
	touch $@

test: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/python -m pytest -q tests $(PYTEST_ARGS)

# Remote-code loading across versions: saved by 5.x -> loaded by 4.48, and saved by 4.48 -> loaded by 4.48 and 5.x.
test-compat: $(VENV)/.installed $(VENV_COMPAT)/.installed
	$(OFFLINE) NUCEL_OTHER_PYTHON=$(abspath $(VENV_COMPAT))/bin/python $(VENV)/bin/python -m pytest -q $(COMPAT_TESTS)
	$(OFFLINE) NUCEL_OTHER_PYTHON=$(abspath $(VENV))/bin/python $(VENV_COMPAT)/bin/python -m pytest -q $(COMPAT_TESTS)

benchmark: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/python benchmarks/train_step.py

clean:
	rm -rf $(VENV) $(VENV_COMPAT) .pytest_cache
