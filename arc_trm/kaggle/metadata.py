"""``kernel-metadata.json`` and ``dataset-metadata.json`` as the ``kaggle`` CLI reads them, with
the checks it applies before ``kernels push`` / ``datasets create`` (so a package that passes here
is not refused there)."""

from __future__ import annotations

import re

from slugify import slugify  # python-slugify: what the kaggle CLI itself uses for kernel slugs

from arc_trm.errors import ArcTrmError

# machine_shape of the 4x L4 accelerator the ARC Prize 2025/2026 competitions offer.
L4X4_SHAPE = "NvidiaL4X4"
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[a-z0-9][a-z0-9-]*$")


def kernel_metadata(owner: str, title: str, code_file: str, competition: str, dataset_ref: str,
                    machine_shape: str = L4X4_SHAPE) -> dict:
    return {
        "id": f"{owner}/{slugify(title)}",
        "title": title,
        "code_file": code_file,
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": False,      # the CLI's default is true; competitions require false
        "machine_shape": machine_shape,
        "dataset_sources": [dataset_ref],
        "competition_sources": [competition],
        "kernel_sources": [],
        "model_sources": [],
    }


def dataset_metadata(owner: str, slug: str, title: str, licence: str = "MIT") -> dict:
    return {"title": title, "id": f"{owner}/{slug}", "licenses": [{"name": licence}]}


def kernel_problems(meta: dict) -> list[str]:
    p = []
    for key in ("id", "title", "code_file", "language", "kernel_type"):
        if not meta.get(key):
            p.append(f"kernel-metadata: '{key}' is required")
    title, ref = meta.get("title") or "", meta.get("id") or ""
    if title and len(title) < 5:
        p.append("kernel-metadata: title must be at least 5 characters")
    if ref and not _REF.match(ref):
        p.append(f"kernel-metadata: id {ref!r} must be owner/slug")
    elif ref and title and ref.split("/")[1] != slugify(title):
        p.append(f"kernel-metadata: id slug {ref.split('/')[1]!r} does not match the title's slug {slugify(title)!r}")
    if meta.get("language") not in ("python", "r", "rmarkdown"):
        p.append("kernel-metadata: language must be python, r or rmarkdown")
    if meta.get("kernel_type") not in ("script", "notebook"):
        p.append("kernel-metadata: kernel_type must be script or notebook")
    if meta.get("enable_internet") is not False:
        p.append("kernel-metadata: enable_internet must be set to false (competition notebooks run offline)")
    for src in meta.get("dataset_sources", []):
        if not _REF.match(src):
            p.append(f"kernel-metadata: dataset source {src!r} must be owner/slug")
    if not meta.get("competition_sources"):
        p.append("kernel-metadata: competition_sources must name the competition")
    return p


def dataset_problems(meta: dict) -> list[str]:
    p = []
    ref, title, licences = meta.get("id") or "", meta.get("title") or "", meta.get("licenses")
    if not _REF.match(ref):
        p.append(f"dataset-metadata: id {ref!r} must be owner/slug (lower-case letters, digits, hyphens)")
    elif not 6 <= len(ref.split("/")[1]) <= 50:
        p.append("dataset-metadata: slug must be 6 to 50 characters")
    if not 6 <= len(title) <= 50:
        p.append("dataset-metadata: title must be 6 to 50 characters")
    if not isinstance(licences, list) or len(licences) != 1 or not licences[0].get("name"):
        p.append("dataset-metadata: exactly one licence with a name is required")
    if "INSERT_" in ref or "INSERT_" in title:
        p.append("dataset-metadata: template placeholder left in id or title")
    return p


def check(kernel: dict, dataset: dict) -> None:
    problems = kernel_problems(kernel) + dataset_problems(dataset)
    if kernel.get("dataset_sources") and dataset.get("id") not in kernel["dataset_sources"]:
        problems.append("kernel-metadata: dataset_sources does not name the packaged dataset")
    if problems:
        raise ArcTrmError("; ".join(problems))
