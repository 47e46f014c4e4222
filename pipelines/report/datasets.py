"""Which datasets a report reads: one per vendor, told apart by the tables they hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pipelines.report.warehouse import Warehouse
from pipelines.vendors import VENDORS, Vendor
from sources.shared.errors import ConfigError


@dataclass
class VendorDataset:
    """A vendor's dataset in the warehouse and which of its tables are there."""

    vendor: Vendor
    dataset: str
    tables: frozenset[str]

    def has(self, table: str) -> bool:
        """Whether the dataset holds `table`."""
        return table in self.tables

    def missing(self) -> list[str]:
        """The vendor's tables the dataset does not hold."""
        return [name for name in self.vendor.resources if name not in self.tables]


@dataclass
class Datasets:
    """The dataset read per vendor name, and a sentence for each thing left out."""

    found: dict[str, VendorDataset] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def get(self, vendor: str) -> VendorDataset | None:
        """The vendor's dataset, or None when the report has none."""
        return self.found.get(vendor)


def find_datasets(warehouse: Warehouse, requested: Sequence[str] | None) -> Datasets:
    """Each vendor's dataset: the `--dataset` names given (the tables in each tell
    the vendor), else the default datasets `stackspend` and `levelfour`.

    Raises:
        ConfigError: a named dataset is absent or holds no costsync tables, two
            hold the same vendor's tables, or no dataset holds any.
    """
    datasets = _named(warehouse, requested) if requested else _defaults(warehouse)
    if not datasets.found:
        names = ", ".join(requested or list(VENDORS))
        raise ConfigError(
            "--dataset",
            f"no costsync tables in {warehouse.where} (datasets {names}):"
            " run costsync sync stackspend|levelfour first, or name the datasets they loaded",
        )
    for vendor_dataset in datasets.found.values():
        for table in vendor_dataset.missing():
            datasets.missing.append(
                f"{vendor_dataset.vendor.label} {table}: not loaded"
                f" (no table {table} in dataset {vendor_dataset.dataset})"
            )
    return datasets


def _defaults(warehouse: Warehouse) -> Datasets:
    datasets = Datasets()
    for vendor in VENDORS.values():
        tables = frozenset(warehouse.tables(vendor.name)) & set(vendor.resources)
        if tables:
            datasets.found[vendor.name] = VendorDataset(vendor, vendor.name, tables)
        else:
            datasets.missing.append(
                f"{vendor.label}: not in this report (no dataset {vendor.name} with its tables"
                f" in {warehouse.where}; run costsync sync {vendor.name}, or name its dataset"
                " with --dataset)"
            )
    return datasets


def _named(warehouse: Warehouse, names: Sequence[str]) -> Datasets:
    datasets = Datasets()
    for name in dict.fromkeys(names):
        tables = warehouse.tables(name)
        if not tables:
            raise ConfigError("--dataset", f"no dataset {name} in {warehouse.where}")
        vendors = [v for v in VENDORS.values() if tables & set(v.resources)]
        if not vendors:
            raise ConfigError("--dataset", f"dataset {name} holds no costsync tables")
        for vendor in vendors:
            if vendor.name in datasets.found:
                other = datasets.found[vendor.name].dataset
                raise ConfigError(
                    "--dataset",
                    f"datasets {other} and {name} both hold {vendor.label} tables;"
                    " name one dataset per vendor",
                )
            own = frozenset(tables & set(vendor.resources))
            datasets.found[vendor.name] = VendorDataset(vendor, name, own)
    for vendor in VENDORS.values():
        if vendor.name not in datasets.found:
            datasets.missing.append(
                f"{vendor.label}: not in this report (no --dataset holds its tables)"
            )
    return datasets
