# Maintenance commands. The two set-up commands a new user needs are in README.md.
PY ?= python

.PHONY: book test execute gpu-check lint student assignments release clean

book:            ## execute every chapter at its defaults and render the HTML book (_build/html)
	jupyter-book build .

test:            ## the test suite CI runs (unit tests, nbval, papermill at CI parameters, book build)
	$(PY) -m pytest

execute:         ## re-execute notebooks in place at their defaults (after changing lib), clean metadata
	$(PY) scripts/execute_notebooks.py $(NB)

gpu-check:       ## on a GPU machine: unit tests -m gpu, the benchmarks and chapters 2-4 on "cuda", each step with its own time budget (scripts/gpu_check.sh)
	bash scripts/gpu_check.sh

student:         ## the student edition of the book: exercises without solutions (_build/student/html; TAG=term-2027s: badges open that release's student notebooks)
	$(PY) scripts/build_student.py $(if $(TAG),--tag $(TAG))

assignments:     ## otter assign every assignment into dist/<name> (student + autograder versions)
	for a in $$(ls assignments/*/*.ipynb); do n=$$(basename $$a .ipynb); otter assign --no-pdfs $$a dist/$$n; done

release:         ## a term's release into dist/release (TAG=term-2027s): what .github/workflows/release.yml uploads
	$(PY) scripts/release.py build $(if $(TAG),--tag $(TAG)) --out dist/release

lint:            ## ruff lint + format (notebooks included), as pre-commit runs them
	pre-commit run --all-files

clean:
	rm -rf _build dist
