"""The Schematron compiler keeps ISO semantics: checked on a small schema written for the test
(the official rule files are checked in tests/integration/test_einvoice_rules.py)."""

from __future__ import annotations

import pytest

from billing_jobs.einvoice.schematron import Finding, Schematron, SchematronError, compile_schematron

SCHEMA = b"""<?xml version="1.0" encoding="UTF-8"?>
<schema xmlns="http://purl.oclc.org/dsdl/schematron" xmlns:f="urn:test:functions" queryBinding="xslt2">
  <ns prefix="o" uri="urn:test:order"/>
  <ns prefix="f" uri="urn:test:functions"/>
  <ns prefix="xs" uri="http://www.w3.org/2001/XMLSchema"/>
  <let name="currency" value="/o:Order/o:Currency"/>
  <function xmlns="http://www.w3.org/1999/XSL/Transform" name="f:double" as="xs:decimal">
    <param name="value" as="xs:decimal"/>
    <sequence select="$value * 2"/>
  </function>
  <pattern id="lines">
    <let name="limit" value="100"/>
    <rule context="o:Line[@kind = 'gift']">
      <assert id="GIFT-1" flag="warning" test="o:Price = 0"
        >A gift <name/> costs <value-of select="o:Price"/> <emph>nothing</emph>.</assert>
    </rule>
    <rule context="o:Line">
      <let name="total" value="o:Price * o:Quantity"/>
      <assert id="LINE-1" flag="fatal" test="$total le $limit"
        >Line <value-of select="@n"/> is <value-of select="$total"/> <value-of select="$currency"/>, <!--
        -->over <value-of select="$limit"/>.</assert>
      <report id="LINE-2" flag="warning" test="f:double(o:Quantity) gt 10"
        >Line <value-of select="@n"/> has a large quantity.</report>
      <assert id="LINE-3" test="o:Price &gt;= 0">Line <value-of select="@n"/>: no grade given.</assert>
    </rule>
  </pattern>
  <pattern id="any-element">
    <rule context="o:Line[$currency = 'SEK']">
      <assert id="SEK-1" flag="fatal" test="@n">A line in kronor has a number.</assert>
    </rule>
    <rule context="o:Line">
      <assert id="NEVER" flag="fatal" test="false()">Shadowed by the first rule for lines in kronor.</assert>
    </rule>
  </pattern>
</schema>
"""

ORDER = """<Order xmlns="urn:test:order"><Currency>SEK</Currency>
  <Line n="1"><Price>30</Price><Quantity>3</Quantity></Line>
  <Line n="2"><Price>60</Price><Quantity>3</Quantity></Line>
  <Line n="3" kind="gift"><Price>5</Price><Quantity>1</Quantity></Line>
  <Line n="4"><Price>-1</Price><Quantity>7</Quantity></Line>
  <Line><Price>1</Price><Quantity>1</Quantity></Line>
</Order>"""


@pytest.fixture(scope="module")
def schematron() -> Schematron:
    return Schematron(SCHEMA, "test.sch", "test rules")


def test_first_matching_rule_per_pattern_lets_asserts_reports_and_messages(schematron: Schematron) -> None:
    found = [(f.rule, f.flag, f.location, f.text) for f in schematron.check(ORDER)]
    assert found == [
        # pattern "lines": line 3 is handled by the gift rule only (its first matching rule)
        ("LINE-1", "fatal", "/Order[1]/Line[2]", "Line 2 is 180 SEK, over 100."),
        ("GIFT-1", "warning", "/Order[1]/Line[3]", "A gift Line costs 5 nothing."),
        ("LINE-2", "warning", "/Order[1]/Line[4]", "Line 4 has a large quantity."),
        ("LINE-3", "fatal", "/Order[1]/Line[4]", "Line 4: no grade given."),  # no flag: fatal
        # pattern "any-element": a schema-level let in a rule context; NEVER is shadowed
        ("SEK-1", "fatal", "/Order[1]/Line[5]", "A line in kronor has a number."),
    ]
    assert all(isinstance(f, Finding) and f.source == "test rules" for f in schematron.check(ORDER))


def test_rules_depending_on_a_global_let_follow_the_document(schematron: Schematron) -> None:
    in_euro = ORDER.replace("<Currency>SEK</Currency>", "<Currency>EUR</Currency>")
    rules = [f.rule for f in schematron.check(in_euro)]
    # Not in kronor: the first rule of the second pattern no longer matches, so the second fires
    # on every line; LINE-1's message names the other currency.
    assert rules == ["LINE-1", "GIFT-1", "LINE-2", "LINE-3", *["NEVER"] * 5]
    assert schematron.check(in_euro)[0].text == "Line 2 is 180 EUR, over 100."


def test_a_clean_document_has_no_findings(schematron: Schematron) -> None:
    clean = (
        '<Order xmlns="urn:test:order"><Currency>SEK</Currency>'
        '<Line n="1"><Price>1</Price><Quantity>1</Quantity></Line></Order>'
    )
    assert schematron.check(clean) == []


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (b"<schema/>", "test.sch: the root element is schema, not an ISO Schematron schema"),
        (b"<schema", "test.sch: not well-formed XML"),
        (
            b'<schema xmlns="http://purl.oclc.org/dsdl/schematron"><include href="x.sch"/></schema>',
            "test.sch: <include> is not supported by this compiler",
        ),
        (
            b'<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt"><pattern/></schema>',
            "test.sch: queryBinding 'xslt' is not supported",
        ),
        (
            b'<schema xmlns="http://purl.oclc.org/dsdl/schematron"><pattern>'
            b"<rule><assert test='1'>x</assert></rule></pattern></schema>",
            "test.sch:1: <rule> has no context attribute",
        ),
        (
            b'<schema xmlns="http://purl.oclc.org/dsdl/schematron"><ns prefix="xs" uri="urn:other"/>'
            b"<pattern/></schema>",
            "test.sch: the prefix 'xs' is bound to urn:other, which this compiler reserves",
        ),
    ],
)
def test_what_the_compiler_cannot_do_is_refused(schema: bytes, message: str) -> None:
    with pytest.raises(SchematronError, match=message):
        compile_schematron(schema, "test.sch")


def test_an_xpath_error_in_a_rule_is_refused_when_compiled() -> None:
    schema = (
        b'<schema xmlns="http://purl.oclc.org/dsdl/schematron"><pattern><rule context="*">'
        b'<assert id="X" test="$undeclared">x</assert></rule></pattern></schema>'
    )
    with pytest.raises(SchematronError, match=r"bad.sch: the compiled XSLT does not compile:.*undeclared"):
        Schematron(schema, "bad.sch", "test")


def test_a_test_that_cannot_be_evaluated_is_a_fatal_finding_of_its_rule(schematron: Schematron) -> None:
    order = ORDER.replace("<Price>-1</Price>", "<Price>minus one</Price>")
    found = [(f.rule, f.flag, f.location, f.text) for f in schematron.check(order) if "Line[4]" in f.location]
    assert found == [
        (
            "LINE-1",
            "fatal",
            "/Order[1]/Line[4]",
            'The rule could not be evaluated here: Cannot convert string "minus one" to double',
        ),
        ("LINE-2", "warning", "/Order[1]/Line[4]", "Line 4 has a large quantity."),
        (
            "LINE-3",
            "fatal",
            "/Order[1]/Line[4]",
            'The rule could not be evaluated here: Cannot convert string "minus one" to double',
        ),
    ]
