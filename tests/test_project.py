"""Project consistency: the conda environment mirrors the pinned pip stack."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def _environment_pip():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    return {line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")}


def test_environment_yml_matches_requirements():
    assert "  - python=3.11" in (ROOT / "environment.yml").read_text().splitlines()
    env = _environment_pip() - {"-e ."}
    assert env == _requirements()


def test_pyproject_declares_the_console_script():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["infp-lab"] == "infp_lab.cli:main"
    names = {dep.split(">")[0].split("=")[0].split("<")[0] for dep in project["dependencies"]}
    pinned = {req.split("==")[0] for req in _requirements()}
    assert names <= pinned, f"library dependencies missing from requirements.txt: {names - pinned}"


def test_notebooks_are_valid_with_unique_cell_ids():
    import json

    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        raw = json.loads(path.read_text())
        ids = [cell.get("id") for cell in raw["cells"]]
        assert None not in ids, f"{path.name}: cells without an id (a hard error in future nbformat)"
        assert len(set(ids)) == len(ids), f"{path.name}: repeated cell ids"
        nbformat.validate(nbformat.reads(path.read_text(), as_version=4))


def test_gpu_bundle_carries_the_pinned_versions():
    """scripts/gpu_bundle.sh fetches for the GPU machine the same versions that requirements.txt pins."""
    bundle = (ROOT / "scripts" / "gpu_bundle.sh").read_text()
    pinned = dict(req.split("==") for req in _requirements() if "==" in req)
    for name in ("diffusers", "librosa", "soundfile", "soxr"):
        assert f"{name}=={pinned[name]}" in bundle, f"gpu_bundle.sh does not fetch {name}=={pinned[name]}"
