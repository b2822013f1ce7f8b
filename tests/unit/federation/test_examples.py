"""The federation examples parse as the API models say (the CRDs are generated from them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from estuary.api.aijob import AIJob
from estuary.api.computepool import ComputePool
from estuary.api.federationlink import FederationLink

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "federation"
MODELS = {"AIJob": AIJob, "FederationLink": FederationLink, "ComputePool": ComputePool}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_federation_example_is_valid(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        model = MODELS.get(doc["kind"])
        if model is not None:
            model.model_validate(doc)


def test_the_agentless_example_names_a_provider_and_the_fenced_one_a_signing_key() -> None:
    agentless, fenced = (
        FederationLink.model_validate(d)
        for d in yaml.safe_load_all((EXAMPLES / "link-agentless.yaml").read_text())
    )
    assert agentless.spec.mode == "Agentless" and agentless.spec.provider is not None
    assert fenced.spec.fencing and fenced.spec.signing_key_secret_ref is not None
