# Two commands do everything on a fresh machine:
#   make demo   - builds/updates the virtual env from the lock, then runs the day-to-night teach-and-repeat demo
#   make test   - builds/updates the virtual env from the lock, then runs the test suite
# and for contributors: make lint (ruff lint + format check, then mypy on dlvf_ros/; settings in pyproject.toml;
# .ci/run runs it before the tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dlvf-installed
LOCK := requirements/requirements.lock
NO_DEPS := requirements/requirements-no-deps.in
# real upstream ROS 2 pure-Python packages as wheels (launch, launch_ros, launch_testing, message_filters, ...) for the
# tests, beside the checkout where this workplace provides them (README there); on a robot the apt packages are used
ROS2_WHEELS := ../shared/ros2-wheels

.PHONY: venv demo test lint format lock bench clean-venv

venv: $(STAMP)

$(STAMP): $(LOCK) setup.py setup.cfg package.xml tools/build_tf2_msgs.sh $(wildcard $(ROS2_WHEELS)/*.whl)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(LOCK)
	if compgen -G "$(ROS2_WHEELS)/*.whl" > /dev/null; then \
		$(BIN)/python -m pip install --quiet --no-deps $(ROS2_WHEELS)/*.whl; fi
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	bash tools/build_tf2_msgs.sh $(VENV)
	touch $(STAMP)

demo: venv
	$(BIN)/dlvf demo

test: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider test

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: venv
	$(BIN)/dlvf bench render && $(BIN)/dlvf bench features && $(BIN)/dlvf bench localize

lock:
	$(PYTHON) -m pip install --quiet pip-tools
	$(PYTHON) -m piptools compile --generate-hashes --no-emit-index-url --no-emit-find-links --allow-unsafe \
		--strip-extras -q requirements/requirements.in -o $(LOCK)
	$(PYTHON) tools/lock_no_deps.py $(NO_DEPS) $(LOCK)

clean-venv:
	rm -rf $(VENV)
