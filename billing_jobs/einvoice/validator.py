"""Check a UBL 2.1 Invoice or CreditNote against the official rules of Peppol BIS Billing 3.0.

Three rule sets, all read from the rules folder given by the caller (the CLI takes it from
``CHARGEBACK_EINVOICE_RULES_DIR``):

1. the OASIS UBL 2.1 XML Schema of the document type (``ubl-2.1/maindoc/UBL-<Type>-2.1.xsd``),
   checked with lxml, since SaxonC-HE has no schema validation;
2. the CEN EN 16931 Schematron bound to UBL (``CEN-EN16931-UBL.sch``);
3. the OpenPEPPOL BIS Billing 3.0.19 Schematron (``PEPPOL-EN16931-UBL.sch``).

The Schematron files are compiled to XSLT by :mod:`billing_jobs.einvoice.schematron` and run with
SaxonC-HE. A rules folder that holds no schema for a document type (the shared folder has
``UBL-Invoice-2.1.xsd`` but no ``UBL-CreditNote-2.1.xsd``) leaves that document checked by the two
Schematron files only: :attr:`Validation.schema` is then ``None`` and
:attr:`Validation.schema_missing` says which file was missing. Nothing pretends to have checked it.

Each Schematron file is compiled once per process and kept in memory, keyed by the file's SHA-256,
so a changed rule file is compiled again and an unchanged one never twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from lxml import etree as ET

from billing_jobs.einvoice.schematron import Finding, Schematron, SchematronError
from chargeback.errors import UserError

UBL_VERSION = "ubl-2.1"
BIS_VERSION = "peppol-bis-3.0.19"
DOCUMENT_TYPES = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "Invoice",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "CreditNote",
}
XSD_SOURCE = "UBL 2.1 XSD"
XSD_RULE = "UBL-XSD"  # the rule id of a schema violation (the schema has no rule ids of its own)
RUN_ERROR_RULE = "SCHEMATRON-ERROR"  # the rule id when a rule file stopped with an error
SCHEMATRONS = (  # (file name, source named in findings), in the order they run
    ("CEN-EN16931-UBL.sch", "CEN EN 16931"),
    ("PEPPOL-EN16931-UBL.sch", "PEPPOL BIS 3.0.19"),
)


class EInvoiceError(UserError):
    """A document that is no UBL Invoice or CreditNote, or a rules folder that is not complete."""

    code = "einvoice.invalid"

    code = "einvoice.invalid"


@dataclass(frozen=True)
class RuleFiles:
    """The files of the official rules inside a rules folder."""

    rules_dir: Path

    @property
    def maindoc(self) -> Path:
        return self.rules_dir / UBL_VERSION / "maindoc"

    @property
    def schematrons(self) -> tuple[tuple[Path, str], ...]:
        return tuple((self.rules_dir / BIS_VERSION / "sch" / f, source) for f, source in SCHEMATRONS)

    @property
    def examples(self) -> Path:
        return self.rules_dir / BIS_VERSION / "examples"

    def schema(self, document_type: str) -> Path:
        return self.maindoc / f"UBL-{document_type}-2.1.xsd"

    def check(self) -> None:
        """Refuse a folder without the Invoice schema or either Schematron file, naming what is missing."""
        if not self.rules_dir.is_dir():
            raise EInvoiceError(
                f"the e-invoice rules folder {self.rules_dir} does not exist "
                "(set CHARGEBACK_EINVOICE_RULES_DIR)"
            )
        required = [self.schema("Invoice"), *(path for path, _ in self.schematrons)]
        missing = [str(path) for path in required if not path.is_file()]
        if missing:
            raise EInvoiceError(
                f"the e-invoice rules folder {self.rules_dir} is missing {', '.join(missing)} "
                "(set CHARGEBACK_EINVOICE_RULES_DIR)"
            )


@dataclass(frozen=True)
class Validation:
    """What the official rules found in one document."""

    document_type: str  # Invoice or CreditNote
    findings: tuple[Finding, ...]
    schema: Path | None  # the XSD the document was checked against
    schema_missing: Path | None = None  # the XSD that would have applied but is not in the folder

    @property
    def fatal(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag == "fatal")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.flag == "warning")

    @property
    def rules(self) -> list[str]:
        """The rule ids that fired, sorted, each once."""
        return sorted({f.rule for f in self.findings})


_compiled: dict[str, Schematron] = {}  # SHA-256 of a .sch file -> the file compiled
_schemas: dict[tuple[Path, str], ET.XMLSchema] = {}


def _schematron(path: Path, source: str) -> Schematron:
    schema = path.read_bytes()
    key = hashlib.sha256(schema).hexdigest()
    if key not in _compiled:
        _compiled[key] = Schematron(schema, path.name, source)
    return _compiled[key]


def _xml_schema(path: Path) -> ET.XMLSchema:
    key = (path, hashlib.sha256(path.read_bytes()).hexdigest())
    if key not in _schemas:
        _schemas[key] = ET.XMLSchema(ET.parse(str(path), _parser()))
    return _schemas[key]


def _parser() -> ET.XMLParser:
    return ET.XMLParser(resolve_entities=False, no_network=True)


class Validator:
    """The official rules of one rules folder; :meth:`validate` checks a document against them."""

    def __init__(self, rules_dir: Path) -> None:
        self.files = RuleFiles(rules_dir)
        self.files.check()
        # Compiled now, so a broken rule file fails at start rather than on the first document.
        self.schematrons = [_schematron(path, source) for path, source in self.files.schematrons]

    def validate(self, document: bytes, name: str = "document") -> Validation:
        """Every finding of the XSD and both Schematron files on ``document`` (``name`` names it
        in errors). A document that is not well-formed, or not a UBL Invoice or CreditNote, is
        refused with :class:`EInvoiceError`."""
        try:
            tree = ET.fromstring(document, _parser()).getroottree()
        except ET.XMLSyntaxError as exc:
            raise EInvoiceError(f"{name}: not well-formed XML: {exc}") from exc
        qname = ET.QName(tree.getroot())
        document_type = DOCUMENT_TYPES.get(qname.namespace or "")
        if document_type is None or qname.localname != document_type:
            raise EInvoiceError(
                f"{name}: the root element {qname.text} is neither a UBL 2.1 Invoice nor a CreditNote"
            )
        findings: list[Finding] = []
        schema_path: Path | None = self.files.schema(document_type)
        missing = None
        if schema_path is not None and schema_path.is_file():
            findings.extend(_schema_findings(_xml_schema(schema_path), tree))
        else:  # no XSD for this type in the folder: the Schematron files are all that check it
            schema_path, missing = None, schema_path
        text = ET.tostring(tree, encoding="unicode")
        for schematron in self.schematrons:
            try:
                findings.extend(schematron.check(text))
            except SchematronError as exc:
                # A rule that cannot be evaluated on this document (an amount that is no number, a
                # date that is no date): the document is rejected, never passed.
                findings.append(Finding(RUN_ERROR_RULE, "fatal", "/", str(exc), schematron.source))
        return Validation(document_type, tuple(findings), schema_path, missing)


def _schema_findings(schema: ET.XMLSchema, tree: ET._ElementTree) -> Sequence[Finding]:
    if schema.validate(tree):
        return []
    errors = cast("Iterable[Any]", schema.error_log)  # lxml-stubs leave the error log untyped
    return [
        Finding(XSD_RULE, "fatal", f"{error.path} (line {error.line})", error.message, XSD_SOURCE)
        for error in errors
    ]
