"""A link's client for its partner, built from the kubeconfig Secret (and rebuilt when the Secret or
the link's kind of partner changes), and the key this cluster signs its copies with."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from estuary.api.federationlink import FederationLinkSpec
from estuary.federation import attempt, origins
from estuary.federation.home import HomeApi
from estuary.federation.partner import (
    BAD_CREDENTIALS,
    REFUSED,
    Partner,
    PartnerApi,
    PartnerError,
    build_client,
    parse_kubeconfig,
)
from estuary.federation.provider import AgentlessPartner, ProviderKube, real_provider_factory

PartnerFactory = Callable[[dict[str, Any]], Partner]
ProviderFactory = Callable[[dict[str, Any]], ProviderKube]


def default_partner_factory(conf: dict[str, Any]) -> Partner:
    return PartnerApi(build_client(conf))


class Clients:
    """Used by the link's worker thread only."""

    def __init__(
        self,
        name: str,
        home_namespace: str,
        home: HomeApi,
        partner_factory: PartnerFactory = default_partner_factory,
        provider_factory: ProviderFactory = real_provider_factory,
        fence_image: str = "estuary",
    ) -> None:
        self.name, self.home_namespace, self.home = name, home_namespace, home
        self.partner_factory, self.provider_factory, self.fence_image = (
            partner_factory,
            provider_factory,
            fence_image,
        )
        self._partner: Partner | None = None
        self._digest = ""
        self.signing_key: bytes | None = None

    def partner(self, spec: FederationLinkSpec) -> Partner:
        ref = spec.kubeconfig_secret_ref
        raw = self.home.read_secret_key(self.home_namespace, ref.name, ref.key)
        shape = spec.provider.model_dump_json() if spec.provider else ""
        digest = hashlib.sha256(raw + f"{spec.mode}/{spec.remote_namespace}/{shape}".encode()).hexdigest()
        if self._partner is None or digest != self._digest:
            if self._partner is not None:
                self._partner.close()
                self._partner = None
            conf = parse_kubeconfig(raw, f"Secret {self.home_namespace}/{ref.name} key {ref.key!r}")
            self._partner, self._digest = self._build(conf, spec), digest
        if spec.mode == "Estuary":
            self.signing_key = self._read_signing_key(spec)
        return self._partner

    def _build(self, conf: dict[str, Any], spec: FederationLinkSpec) -> Partner:
        if spec.mode != "Agentless":
            return self.partner_factory(conf)
        if spec.provider is None:
            raise PartnerError(REFUSED, "spec.provider is required when spec.mode is Agentless")
        provider = attempt.Provider(
            self.name,
            spec.remote_namespace,
            attempt.declared_offers(spec.provider),
            spec.provider.discover,
            spec.provider.kueue_queue,
            spec.provider.service_account_name,
            spec.provider.fence_image or self.fence_image,
        )
        return AgentlessPartner(self.provider_factory(conf), provider)

    def _read_signing_key(self, spec: FederationLinkSpec) -> bytes:
        """The key this cluster signs its copies with (the partner holds it under our name)."""
        ref = spec.signing_key_secret_ref
        if ref is None:
            raise PartnerError(
                BAD_CREDENTIALS,
                "spec.signingKeySecretRef is not set: the partner treats only copies signed with a "
                "key it holds for this cluster as federation copies (docs/federation.md)",
            )
        key = self.home.read_secret_key(self.home_namespace, ref.name, ref.key).strip()
        if len(key) < origins.MIN_KEY_BYTES:
            raise PartnerError(
                BAD_CREDENTIALS,
                f"the signing key in Secret {self.home_namespace}/{ref.name} key {ref.key!r} is shorter "
                f"than {origins.MIN_KEY_BYTES} bytes",
            )
        return key
