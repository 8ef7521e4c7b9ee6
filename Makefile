# infp-lab: every target sets itself up first (scripts/setup.sh is idempotent and fast
# once the venv exists).
PY := .venv/bin/python
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1

.PHONY: setup demo test lab samples contact-sheet clean

setup:
	@bash scripts/setup.sh

# The main job: until the demo lands, generate a SynConv conversation and render its video.
demo: setup
	$(PY) -m infp_lab data synth --out out/synconv --conversations 2 --seconds 12 --seed 0
	$(PY) -m infp_lab data render --clip out/synconv/conv0000_a --out out/conv0000_a.mp4 --size 256
	@echo "wrote out/conv0000_a.mp4"

test: setup
	$(PY) -m pytest

lab: setup
	$(PY) -m jupyter lab --ip=127.0.0.1 --no-browser --allow-root --LabApp.extension_manager=readonly notebooks/

samples: setup
	$(PY) scripts/make_data_samples.py

contact-sheet: setup
	$(PY) scripts/make_contact_sheet.py --out data_samples/contact_sheet.png

clean:
	rm -rf out .pytest_cache
