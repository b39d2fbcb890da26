"""ISO Schematron to XSLT 3.0: a small compiler, enough for the EN 16931 and Peppol BIS rule files.

What it keeps of ISO Schematron (ISO/IEC 19757-3):

- every ``pattern`` is one pass over the document in its own mode; within a pattern a node is
  handled by the FIRST ``rule`` whose ``context`` matches it (rules get descending template
  priorities in document order), later rules of the pattern never see that node;
- ``assert`` fires when its test is false, ``report`` when its test is true; the ``id``, ``flag``
  (fatal, warning, ...) and the message text go into the result, with ``value-of`` and ``name``
  evaluated on the rule's context node;
- ``let`` at schema and pattern level become global variables (so rule contexts may use them, as
  the Peppol file does), ``let`` inside a rule a local variable seen by the tests after it;
- ``ns`` declarations, and the ``xsl:function`` elements embedded in the schema, are carried over.

One addition: a test that raises a dynamic error on a document (``xs:decimal('abc')``) is reported
as a fatal finding of that assertion ("could not be evaluated"), where a plain ISO implementation
stops the whole run; the document is rejected either way, and the other rules still report.

Phases are ignored: every pattern is active. ``include``, ``extends``, abstract patterns and
diagnostics are not supported and are refused rather than skipped, so a rule file that needs them
cannot pass silently.

The XSLT writes a subset of SVRL (``svrl:failed-assert`` / ``svrl:successful-report`` with
``id``, ``flag``, ``location``, ``test`` and ``svrl:text``), which :func:`parse_svrl` reads back.
:class:`Schematron` runs it with SaxonC-HE (XSLT 3.0), one processor per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from lxml import etree as ET

from chargeback.errors import UserError

SCH = "http://purl.oclc.org/dsdl/schematron"
XSL = "http://www.w3.org/1999/XSL/Transform"
SVRL = "http://purl.oclc.org/dsdl/svrl"
XS = "http://www.w3.org/2001/XMLSchema"
ERR = "http://www.w3.org/2005/xqt-errors"
# The compiler's own helper function (the location path of a node) lives in this namespace.
OWN = "urn:chargeback:schematron"

Flag = Literal["fatal", "warning", "information"]
FLAGS: tuple[Flag, ...] = ("fatal", "warning", "information")
_UNSUPPORTED = ("include", "extends", "diagnostics", "diagnostic")


class SchematronError(UserError):
    """A Schematron file this compiler cannot turn into XSLT (names the file and the reason)."""

    code = "einvoice.schematron_invalid"

    code = "einvoice.schematron"


@dataclass(frozen=True)
class Finding:
    """One failed assertion or successful report, as the rules word it.

    ``flag`` is the rule's ``flag`` attribute; a rule without one counts as ``fatal`` (an assertion
    nobody graded is not a hint). ``location`` is an XPath to the node the rule was checking.
    """

    rule: str
    flag: Flag
    location: str
    text: str
    source: str  # which rule set (e.g. "CEN EN 16931", "PEPPOL BIS 3.0.19", "UBL 2.1 XSD")


def _sch(tag: str) -> str:
    return f"{{{SCH}}}{tag}"


def _xsl(parent: ET._Element, tag: str, **attrs: str) -> ET._Element:
    return ET.SubElement(parent, f"{{{XSL}}}{tag}", attrs)


def _children(element: ET._Element) -> Iterator[ET._Element]:
    """Element children, without comments and processing instructions."""
    for child in element:
        if isinstance(child.tag, str):
            yield child


def compile_schematron(schema: bytes, name: str = "schema") -> str:
    """The XSLT 3.0 stylesheet (text) that checks a document against ``schema`` (an ISO Schematron
    file's bytes); ``name`` names the file in errors."""
    try:
        root = ET.fromstring(schema, parser=ET.XMLParser(resolve_entities=False, no_network=True))
    except ET.XMLSyntaxError as exc:
        raise SchematronError(f"{name}: not well-formed XML: {exc}") from exc
    if root.tag != _sch("schema"):
        raise SchematronError(f"{name}: the root element is {root.tag}, not an ISO Schematron schema")
    binding = root.get("queryBinding", "xslt2").lower()
    if binding not in ("xslt2", "xslt3", "xpath2", "xpath3", "xpath31"):
        raise SchematronError(f"{name}: queryBinding {binding!r} is not supported (xslt2 or xslt3 only)")
    for tag in _UNSUPPORTED:
        if root.find(f".//{{{SCH}}}{tag}") is not None:
            raise SchematronError(f"{name}: <{tag}> is not supported by this compiler")
    if root.find(f".//{{{SCH}}}pattern[@abstract='true']") is not None:
        raise SchematronError(f"{name}: abstract patterns are not supported by this compiler")

    namespaces: dict[str, str] = {
        prefix: uri for prefix, uri in root.nsmap.items() if prefix and uri not in (SCH,)
    }
    for ns in root.iter(_sch("ns")):
        namespaces[ns.get("prefix", "")] = ns.get("uri", "")
    nsmap: dict[str, str] = {"xsl": XSL, "svrl": SVRL, "sch-own": OWN, "sch-own-err": ERR, "xs": XS}
    for prefix, uri in namespaces.items():
        if nsmap.setdefault(prefix, uri) != uri:
            raise SchematronError(
                f"{name}: the prefix {prefix!r} is bound to {uri}, which this compiler reserves"
            )
    sheet = ET.Element(
        f"{{{XSL}}}stylesheet", {"version": "3.0", "exclude-result-prefixes": "#all"}, nsmap=nsmap
    )
    _xsl(sheet, "output", method="xml", indent="no")
    _location_function(sheet)

    patterns = [p for p in _children(root) if p.tag == _sch("pattern")]
    for child in _children(root):
        if child.tag == _sch("let"):
            _global_variable(sheet, child, name)
        elif child.tag == f"{{{XSL}}}function":
            sheet.append(_copy(child))
        elif child.tag == _sch("pattern"):
            for let in (c for c in _children(child) if c.tag == _sch("let")):
                _global_variable(sheet, let, name)

    main = _xsl(sheet, "template", match="/")
    output = ET.SubElement(main, f"{{{SVRL}}}schematron-output")
    for number, _pattern in enumerate(patterns, start=1):
        _xsl(output, "apply-templates", select=".", mode=f"sch-own:p{number}")
    for number, pattern in enumerate(patterns, start=1):
        mode = f"sch-own:p{number}"
        # Nodes no rule of the pattern matches: go on into their attributes and children.
        _xsl(sheet, "mode", name=mode, **{"on-no-match": "shallow-skip"})
        rules = [r for r in _children(pattern) if r.tag == _sch("rule")]
        for index, rule in enumerate(rules):
            _rule_template(sheet, rule, mode, priority=len(rules) - index, name=name)
    return ET.tostring(sheet, encoding="unicode")


def _copy(element: ET._Element) -> ET._Element:
    """A detached deep copy that keeps the namespace declarations its QNames need."""
    return ET.fromstring(ET.tostring(element))


def _literal(value: str) -> str:
    """``value`` as the text of an attribute value template (braces doubled)."""
    return value.replace("{", "{{").replace("}", "}}")


def _global_variable(sheet: ET._Element, let: ET._Element, name: str) -> None:
    variable = _xsl(sheet, "variable", name=_required(let, "name", name))
    if let.get("value") is not None:
        variable.set("select", let.get("value", ""))
    else:  # ISO allows the value as element content
        for child in let:
            variable.append(_copy(child))


def _required(element: ET._Element, attribute: str, name: str) -> str:
    value = element.get(attribute)
    if value is None:
        local = ET.QName(element).localname
        raise SchematronError(f"{name}:{element.sourceline}: <{local}> has no {attribute} attribute")
    return value


def _location_function(sheet: ET._Element) -> None:
    """``sch-own:location($node)``: /Invoice[1]/cac:TaxTotal[1]/... with the document's prefixes."""
    function = _xsl(sheet, "function", name="sch-own:location", **{"as": "xs:string"})
    _xsl(function, "param", name="node", **{"as": "node()"})
    _xsl(
        function,
        "sequence",
        select=(
            "string-join(("
            "for $e in $node/ancestor-or-self::* return concat('/', name($e), '[', "
            "count($e/preceding-sibling::*[node-name(.) = node-name($e)]) + 1, ']'), "
            "if ($node instance of attribute()) then concat('/@', name($node)) else ()"
            "), '')"
        ),
    )


def _rule_template(sheet: ET._Element, rule: ET._Element, mode: str, priority: int, name: str) -> None:
    if rule.get("abstract") == "true":
        raise SchematronError(f"{name}:{rule.sourceline}: abstract rules are not supported")
    template = _xsl(sheet, "template", match=_required(rule, "context", name), mode=mode)
    template.set("priority", str(priority))
    lets: list[tuple[str, str]] = []  # the rule's lets so far, in document order
    for child in _children(rule):
        local = ET.QName(child).localname
        if child.tag == _sch("let"):
            lets.append((_required(child, "name", name), _required(child, "value", name)))
        elif child.tag in (_sch("assert"), _sch("report")):
            test = _required(child, "test", name)
            condition = f"not({test})" if local == "assert" else test
            # A test that cannot be evaluated on this document (an amount that is no number) is a
            # fatal finding of that rule, and the other rules still run. The rule's lets are
            # declared inside the try, so their errors are caught with the test that uses them.
            attempt = _xsl(template, "try")
            for variable, value in lets:
                _xsl(attempt, "variable", name=variable, select=value)
            check = _xsl(attempt, "if", test=condition)
            element = "failed-assert" if local == "assert" else "successful-report"
            found = ET.SubElement(check, f"{{{SVRL}}}{element}")
            for attribute in ("id", "flag", "role"):
                if child.get(attribute) is not None:
                    found.set(attribute, _literal(child.get(attribute, "")))
            found.set("test", _literal(test))
            found.set("location", "{sch-own:location(.)}")
            _message(ET.SubElement(found, f"{{{SVRL}}}text"), child)
            failed = ET.SubElement(_xsl(attempt, "catch"), f"{{{SVRL}}}failed-assert")
            if child.get("id") is not None:
                failed.set("id", _literal(child.get("id", "")))
            failed.set("flag", "fatal")
            failed.set("test", _literal(test))
            failed.set("location", "{sch-own:location(.)}")
            text = ET.SubElement(failed, f"{{{SVRL}}}text")
            _xsl(text, "text").text = "The rule could not be evaluated here: "
            _xsl(text, "value-of", select="$sch-own-err:description")
        else:
            raise SchematronError(f"{name}:{child.sourceline}: <{local}> inside a rule is not supported")
    # The rule fired for this node; the pattern goes on into the node's attributes and children.
    _xsl(template, "apply-templates", select="@*|node()", mode=mode)


def _message(target: ET._Element, source: ET._Element) -> None:
    """The assertion's text with ``value-of`` and ``name`` evaluated; other markup (emph, dir,
    span) contributes its text."""
    if source.text:
        _xsl(target, "text").text = source.text
    for child in source:
        if child.tag == _sch("value-of"):
            _xsl(target, "value-of", select=child.get("select", "."))
        elif child.tag == _sch("name"):
            _xsl(target, "value-of", select=f"name({child.get('path', '.')})")
        elif isinstance(child.tag, str):
            text = _text(child)
            if text:
                _xsl(target, "text").text = text
        if child.tail:
            _xsl(target, "text").text = child.tail


def parse_svrl(svrl: str | bytes, source: str) -> list[Finding]:
    """The findings of an SVRL report written by a compiled schema, in the order they fired."""
    root = ET.fromstring(svrl.encode() if isinstance(svrl, str) else svrl)
    findings = []
    for element in root.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        findings.append(
            Finding(
                rule=element.get("id") or "",
                flag=_flag(element.get("flag")),
                location=element.get("location", ""),
                text=" ".join(_text(element).split()),
                source=source,
            )
        )
    return findings


def _flag(value: str | None) -> Flag:
    """The rule's flag; none, or one this module does not know, counts as fatal."""
    for flag in FLAGS:
        if value == flag:
            return flag
    return "fatal"


def _text(element: ET._Element) -> str:
    return ET.tostring(element, method="text", encoding="unicode", with_tail=False)


_saxon_lock = threading.Lock()  # SaxonC: one processor per process, used by one thread at a time
_processor: list[Any] = []


def _saxon() -> Any:
    if not _processor:
        from saxonche import PySaxonProcessor

        _processor.append(PySaxonProcessor(license=False))
    return _processor[0]


class Schematron:
    """One Schematron file compiled to XSLT and then by Saxon, ready to check documents."""

    def __init__(self, schema: bytes, name: str, source: str) -> None:
        from saxonche import PySaxonApiError

        self.name, self.source = name, source
        self.xslt = compile_schematron(schema, name)
        with _saxon_lock:
            try:
                self._executable = (
                    _saxon().new_xslt30_processor().compile_stylesheet(stylesheet_text=self.xslt)
                )
            except PySaxonApiError as exc:
                raise SchematronError(
                    f"{name}: the compiled XSLT does not compile: {_one_line(exc)}"
                ) from exc

    def check(self, document: str) -> list[Finding]:
        """The findings on ``document`` (XML text, without an encoding declaration to obey)."""
        from saxonche import PySaxonApiError

        with _saxon_lock:
            try:
                node = _saxon().parse_xml(xml_text=document)
                svrl = self._executable.transform_to_string(xdm_node=node)
            except PySaxonApiError as exc:
                raise SchematronError(f"{self.name}: the rules could not be run: {_one_line(exc)}") from exc
        return parse_svrl(svrl, self.source)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
