"""Vendor profiles (data) and their loader."""

from estuary.vendors.loader import ProfileError, VendorProfile, load, profiles, vendor_for_resource

__all__ = ["ProfileError", "VendorProfile", "load", "profiles", "vendor_for_resource"]
