"""The README is one page a newcomer reads; every config key is documented in docs/; links lead somewhere."""

import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.test_spaces import compose_config

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_one_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300


@pytest.mark.parametrize("data", ["synthetic", "csv", "co2", "panel", "synthetic_panel"])
def test_every_config_key_is_documented(data):
    docs = "\n".join(page.read_text() for page in PAGES)
    config = OmegaConf.to_container(compose_config("+space=conv_lstm", f"data={data}"), resolve=False)
    undocumented = []

    def visit(node: dict, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if name == "space":  # a space's entries are its hyperparameters: documented with the models
                continue
            if isinstance(value, dict) and value:
                visit(value, f"{name}.")
            elif name not in docs and f"`{key}`" not in docs:
                undocumented.append(name)

    visit(config, "")
    assert undocumented == []


def test_links_between_pages_lead_to_files_and_headings_that_exist():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)
                slugs = {re.sub(r"[^\w\- ]", "", h.lower()).strip().replace(" ", "-") for h in headings}
                if anchor not in slugs:
                    broken.append(f"{page.name}: {target}")
    assert broken == []
