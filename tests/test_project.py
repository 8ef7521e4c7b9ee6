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
