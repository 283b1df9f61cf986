"""The book's notebook conventions, and papermill runs of every chapter at the CI parameter set.

nbval (enabled in pyproject's addopts) separately re-executes every ``book/*.ipynb`` at its
stored defaults and compares the outputs; this file checks what nbval cannot: the shape of each
notebook, and that its ``parameters`` cell really drives it.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
CI_PARAMS = ROOT / "tests" / "notebook_params.yaml"
COLAB = re.compile(
    r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/(\S+?\.ipynb)"
)
PINNED = re.compile(r"""["'](torch|numpy|torchvision)\s*(==|<|<=|~=)""")
VOLATILE = {
    "tensor repr": re.compile(r"tensor\("),
    "memory address": re.compile(r" at 0x[0-9a-fA-F]{6,}"),
    "temporary path": re.compile(r"/tmp/|ipykernel_\d+"),
    "device repr": re.compile(r"device=.cuda|device\(type="),
    "timing": re.compile(r"\b\d+(\.\d+)?\s?(ms|µs|us|s/it|it/s)\b|Wall time|CPU times"),
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def source(cell: dict) -> str:
    return "".join(cell["source"])


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def parameters_cell(nb: dict) -> dict:
    cells = [c for c in nb["cells"] if "parameters" in tags(c)]
    assert len(cells) == 1, f"expected exactly one cell tagged 'parameters', found {len(cells)}"
    return cells[0]


def parameter_names(nb: dict) -> dict[str, object]:
    """Names and literal values of the parameters cell (fails if a value is not a literal)."""
    tree = ast.parse(source(parameters_cell(nb)))
    values = {}
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, (
            f"parameters cell may hold only `NAME = literal` lines, got: {ast.unparse(stmt)}"
        )
        target = stmt.targets[0]
        assert isinstance(target, ast.Name), f"not a plain name: {ast.unparse(target)}"
        try:
            values[target.id] = ast.literal_eval(stmt.value)
        except ValueError:
            pytest.fail(f"parameter {target.id} is not a literal: {ast.unparse(stmt.value)}")
    return values


def test_there_are_notebooks():
    assert NOTEBOOKS, "book/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
class TestConventions:
    def test_title_cell_with_run_times(self, path):
        first = load(path)["cells"][0]
        text = source(first)
        assert first["cell_type"] == "markdown" and text.startswith("# "), (
            "first cell must be a '# Title' markdown cell"
        )
        line = next((ln for ln in text.splitlines() if "run time" in ln.lower()), "")
        assert "CPU" in line and "GPU" in line, (
            "title cell needs an 'Expected run time' line naming CPU and GPU"
        )

    def test_colab_badge_points_at_this_file(self, path):
        text = source(load(path)["cells"][0])
        match = COLAB.search(text)
        assert match, "title cell needs an 'Open in Colab' badge link"
        assert match.group(1) == path.relative_to(ROOT).as_posix()

    def test_guarded_install_cell(self, path):
        code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
        install = code[0]
        text = source(install)
        assert '"google.colab" in sys.modules' in text, (
            "first code cell must be the Colab-guarded install cell"
        )
        tree = ast.parse(text)
        guarded = [n for n in tree.body if isinstance(n, ast.If)]
        assert guarded and all(
            isinstance(n, (ast.Import, ast.ImportFrom, ast.If)) for n in tree.body
        ), "everything in the install cell must sit under the Colab guard"
        assert not PINNED.search(text), "install cell must not pin torch, torchvision or numpy"
        assert "pip" in text
        assert not re.search(r"(?<![\"'])\b[\w-]+(>=|==|<=)[\d.]+", text), (
            "quote every version specifier"
        )

    def test_one_literal_parameters_cell(self, path):
        params = parameter_names(load(path))
        assert "DEVICE" in params and "SEED" in params, "parameters need SEED and DEVICE"

    def test_one_setup_call(self, path):
        calls = sum(
            source(c).count("lib.setup(") for c in load(path)["cells"] if c["cell_type"] == "code"
        )
        assert calls == 1, f"expected one lib.setup(...) call, found {calls}"

    def test_kernelspec_python3(self, path):
        assert load(path)["metadata"]["kernelspec"]["name"] == "python3"

    def test_no_volatile_outputs(self, path):
        for i, cell in enumerate(load(path)["cells"]):
            if cell["cell_type"] != "code" or "nbval-ignore-output" in tags(cell):
                continue
            for out in cell.get("outputs", []):
                texts = [out.get("text", "")] + [
                    v if isinstance(v, str) else "".join(v)
                    for k, v in out.get("data", {}).items()
                    if k.startswith("text/")
                ]
                for text in texts:
                    text = "".join(text)
                    for what, pattern in VOLATILE.items():
                        assert not pattern.search(text), (
                            f"cell {i} prints a {what}: {pattern.search(text).group(0)!r}"
                        )
                assert "image/svg+xml" not in out.get("data", {}), (
                    f"cell {i} stores an SVG figure; use PNG"
                )

    def test_executed_with_stored_outputs(self, path):
        code = [c for c in load(path)["cells"] if c["cell_type"] == "code" and source(c).strip()]
        assert all(c.get("execution_count") for c in code[1:]), (
            "notebook is not fully executed; run `make execute`"
        )
        assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))


def ci_parameters() -> dict[str, dict]:
    import yaml

    return yaml.safe_load(CI_PARAMS.read_text()) or {}


def test_every_notebook_has_a_ci_parameter_set():
    params = ci_parameters()
    names = {p.name for p in NOTEBOOKS}
    assert set(params) == names, f"tests/notebook_params.yaml must list exactly {sorted(names)}"
    for name, values in params.items():
        assert values, f"{name}: the CI parameter set must change at least one parameter"
        declared = parameter_names(load(ROOT / "book" / name))
        unknown = set(values) - set(declared)
        assert not unknown, f"{name}: {sorted(unknown)} are not in its parameters cell"
        same = {k for k in values if values[k] == declared[k]}
        assert not same, f"{name}: CI values equal the defaults for {sorted(same)}"


def execute_with_one_retry(run, name: str):
    """Run a papermill execution; run it once more if the kernel, not the notebook, failed.

    The kernel's messages are occasionally lost (a kernel that died at start-up, or a reply
    that never arrives: papermill's final ``kernel_info`` wait, nteract/papermill#711), which
    shows up as a timeout or a dead kernel although every cell ran. An error raised *by a cell*
    (``PapermillExecutionError``) is never retried.
    """
    import nbclient.exceptions
    import papermill

    transient = (
        nbclient.exceptions.CellTimeoutError,
        nbclient.exceptions.DeadKernelError,
        TimeoutError,
        RuntimeError,  # "Kernel died before replying to kernel_info"
        AssertionError,  # nbclient's timeout of a wait that belongs to no cell
    )
    for attempt in range(2):
        try:
            return run()
        except papermill.PapermillExecutionError:
            raise
        except transient as err:
            if attempt:
                raise
            warnings.warn(f"{name}: kernel failure ({err!r}); running it again", stacklevel=2)
    return None


def test_execute_with_one_retry_retries_kernel_failures_only():
    import papermill

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return "ran"

    with pytest.warns(UserWarning, match="kernel failure"):
        assert execute_with_one_retry(flaky, "nb") == "ran" and len(calls) == 2

    def broken_cell():
        calls.append(1)
        raise papermill.PapermillExecutionError(0, 1, "x = 1", "ValueError", "bad", [])

    calls.clear()
    with pytest.raises(papermill.PapermillExecutionError):
        execute_with_one_retry(broken_cell, "nb")
    assert len(calls) == 1

    def always_hangs():
        calls.append(1)
        raise TimeoutError("no reply")

    calls.clear()
    with pytest.warns(UserWarning), pytest.raises(TimeoutError):
        execute_with_one_retry(always_hangs, "nb")
    assert len(calls) == 2


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_runs_with_ci_parameters(path, tmp_path, monkeypatch):
    """Other parameters may tell another story: the claim checks only warn here (lib.claims)."""
    import papermill

    monkeypatch.setenv("LIB_STRICT_CLAIMS", "0")

    values = ci_parameters().get(path.name)
    if not values:
        pytest.fail(f"{path.name} has no entry in tests/notebook_params.yaml")
    out = tmp_path / path.name
    execute_with_one_retry(
        lambda: papermill.execute_notebook(
            str(path),
            str(out),
            parameters=values,
            kernel_name="python3",
            cwd=str(path.parent),
            progress_bar=False,
            execution_timeout=300,  # a hung cell fails the run instead of stalling CI
        ),
        path.name,
    )
    nb = load(out)
    injected = [c for c in nb["cells"] if "injected-parameters" in tags(c)]
    assert len(injected) == 1, "papermill did not inject the CI parameters"
    for name, value in values.items():
        assert f"{name} = {value!r}" in source(injected[0])


CONFIG_MACROS = re.compile(r"\\(NC|tr|R)(?![a-zA-Z])")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_use_no_macro_that_only_the_book_defines(path):
    """Colab renders the notebook without _config.yml: \\NC, \\tr and \\R would show as errors."""
    cells = json.loads(path.read_text())["cells"]
    found = sorted(
        {m.group(0) for c in cells for m in CONFIG_MACROS.finditer("".join(c["source"]))}
    )
    assert not found, (
        f"{path.name} uses {found}, defined only in _config.yml; write \\mathcal{{NC}}, "
        "\\operatorname{tr}, \\mathbb{R}"
    )
