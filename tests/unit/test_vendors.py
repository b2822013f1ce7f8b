"""Vendor profiles: the shipped facts, and extension by platform teams without code."""

from pathlib import Path

import pytest

from estuary.vendors import ProfileError, load

EXPECTED = {  # vendor: (default resource, runtime visible-devices variable, collective)
    "nvidia": ("nvidia.com/gpu", "CUDA_VISIBLE_DEVICES", "NCCL"),
    "huawei": ("huawei.com/Ascend910", "ASCEND_RT_VISIBLE_DEVICES", "HCCL"),
    "cambricon": ("cambricon.com/mlu", "MLU_VISIBLE_DEVICES", "CNCL"),
    "hygon": ("hygon.com/dcu", "HIP_VISIBLE_DEVICES", "RCCL"),
    "iluvatar": ("iluvatar.ai/gpu", "CUDA_VISIBLE_DEVICES", "IXCCL"),
    "mthreads": ("mthreads.com/gpu", "MUSA_VISIBLE_DEVICES", "MCCL"),
    "metax": ("metax-tech.com/gpu", "MACA_VISIBLE_DEVICES", "MCCL"),
    "enflame": ("enflame.com/gcu", "TOPS_VISIBLE_DEVICES", "ECCL"),
    "kunlunxin": ("kunlunxin.com/xpu", "XPU_VISIBLE_DEVICES", "BKCL"),
}


@pytest.mark.parametrize("vendor", sorted(EXPECTED))
def test_shipped_profiles_carry_the_vendor_facts(vendor: str) -> None:
    profile = load()[vendor]
    resource, env, collective = EXPECTED[vendor]
    assert profile.default_resource == resource
    assert env in profile.visible_devices_env
    assert profile.collective == collective


def test_ascend_profile_knows_the_per_model_resource_names_hami_uses() -> None:
    assert "huawei.com/Ascend910B3" in load()["huawei"].resource_names
    assert load()["huawei"].plugin_devices_env == ("ASCEND_VISIBLE_DEVICES",)


def test_a_platform_team_adds_a_vendor_with_a_data_file(tmp_path: Path) -> None:
    extra = tmp_path / "biren.yaml"
    extra.write_text(
        "profiles:\n- key: biren\n  displayName: Biren\n  resourceNames: [birentech.com/gpu]\n"
        "  visibleDevicesEnv: [BR_VISIBLE_DEVICES]\n  collective: BCCL\n  torchBackend: bccl\n"
    )
    merged = load([extra])
    assert merged["biren"].default_resource == "birentech.com/gpu"
    assert "nvidia" in merged


def test_a_bad_profile_is_refused_with_the_file_entry_and_field(tmp_path: Path) -> None:
    extra = tmp_path / "bad.yaml"
    extra.write_text(
        "profiles:\n- key: x\n  displayName: X\n  resourceNames: [not a resource]\n"
        "  visibleDevicesEnv: [X]\n  collective: C\n  torchBackend: c\n"
    )
    with pytest.raises(ProfileError, match=r"bad.yaml: profiles\[0\] \(x\): resourceNames"):
        load([extra])
