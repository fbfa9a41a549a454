"""Framework-free reporting library: audit evidence packs, HTML reports, GX validation,
the tamper-evident manifest chain and the fleet compliance history.

Nothing here imports Airflow or Great Expectations at import time, so DAG files can import
it cheaply; GX is imported inside the validating functions only.
"""

from include.reporting.audit_document import (
    AuditDataError,
    audit_csv,
    build_audit_document,
    software_versions,
    summarize,
)
from include.reporting.compliance import (
    ComplianceReport,
    EvidenceAnchor,
    build_compliance_report,
    update_compliance_report,
    write_compliance_report,
)
from include.reporting.evidence_pack import (
    EvidencePack,
    EvidencePackError,
    asset_extra,
    build_evidence_pack,
    find_pack,
    raise_if_invalid,
    safe_run_id,
    write_evidence_pack,
)
from include.reporting.validation import AuditValidationError, validate_audit
from include.reporting.verify import ChainVerdict, VerifyResult, verify_chain, verify_reports

__all__ = [
    "AuditDataError",
    "AuditValidationError",
    "ChainVerdict",
    "ComplianceReport",
    "EvidenceAnchor",
    "EvidencePack",
    "EvidencePackError",
    "VerifyResult",
    "asset_extra",
    "audit_csv",
    "build_audit_document",
    "build_compliance_report",
    "build_evidence_pack",
    "find_pack",
    "raise_if_invalid",
    "safe_run_id",
    "software_versions",
    "summarize",
    "update_compliance_report",
    "validate_audit",
    "verify_chain",
    "verify_reports",
    "write_compliance_report",
    "write_evidence_pack",
]
