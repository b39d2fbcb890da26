"""The specification format: its rows per line, the line's sum against the billed quantity, CSV
and XLSX bytes."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal

import openpyxl

from billing_jobs.formats import FORMATS, ExportContext, Seller
from billing_jobs.formats.report import member_page
from billing_jobs.formats.specification import (
    render_specification_csv,
    specification_names,
    specification_rows,
)
from billing_jobs.model import FINAL, DataQuality
from tests.unit.test_explain import CATALOGUE, OCT, SUBJECTS, run_of


def test_rows_per_line_subjects_largest_first_then_the_sum() -> None:
    run, lines = run_of(OCT, SUBJECTS)
    rows = specification_rows(run, lines, SUBJECTS, CATALOGUE, "2183")
    text = render_specification_csv([r for r in rows if r.service in ("storage-file", "soc-shared")])
    assert text.decode() == (
        "municipality,service,service_name,cost_centre,row,subject,name,user,channel,closed,counted,"
        "counted_unit,days_in_month,quantity,unit,amount,note\n"
        "2183,storage-file,Fillagring,BUF,subject,\\\\fs01\\buf,,,,,4650,GiB-days,,,GiB,,\n"
        "2183,storage-file,Fillagring,BUF,subject,\\\\fs01\\buf-arkiv,,,,,1600,GiB-days,,,GiB,,\n"
        "2183,storage-file,Fillagring,BUF,line,,,,,,6250,GiB-days,31,201.612903,GiB,1350,\n"
        "2183,soc-shared,Gemensam SOC,UNALLOCATED,line,,,,,,,,31,1,mån,20075.76,share by key inhabitants\n"
    )
    pc = [(r.row, r.subject, r.name, r.user, r.counted) for r in rows if r.service == "pc-standard"]
    assert pc == [
        ("subject", "PC0042", "BUF-PC42", "anna@bollnas.se", Decimal(31)),
        ("line", "", "", "", Decimal(31)),
    ]


def test_a_line_its_subjects_no_longer_add_up_to_says_so() -> None:
    run, lines = run_of(OCT, SUBJECTS)
    fewer = [s for s in SUBJECTS if s.subject != "user4@bollnas.se"]
    rows = specification_rows(run, lines, fewer, CATALOGUE, "2183")
    (m365,) = [r for r in rows if r.service == "m365-e3" and r.row == "line"]
    assert m365.note == (
        "the subjects stored now add up to 3, not the billed 4: usage arrived after the run was priced"
    )


def test_a_correction_is_named_and_each_member_gets_a_csv_and_a_workbook() -> None:
    draft, lines = run_of(OCT, SUBJECTS)
    run = replace(draft, status=FINAL)
    bollnas = [x for x in lines if x.municipality == "2183"]
    correction = replace(bollnas[-1], corrects_period="2026-09", quantity=Decimal("0.5"))
    context = ExportContext(CATALOGUE, Seller("IT"), subjects=SUBJECTS)
    files = FORMATS["specification"](run, [*lines, correction], context)
    # Every member has a line (its share of the SOC): each gets its CSV and its workbook.
    assert [f.name for f in files] == [
        f"2026-10-abc.{code}.specification.{ext}"
        for code in ("2121", "2132", "2161", "2182", "2183", "2184")
        for ext in ("csv", "xlsx")
    ]
    rows = files[8].body.decode().splitlines()
    assert rows[-1].endswith(",correction of 2026-09: see that month's specification")
    book = openpyxl.load_workbook(io.BytesIO(files[9].body))
    assert book.sheetnames == ["m365-e3", "pc-standard", "soc-shared", "storage-file", "ticket-incident"]
    first = [c.value for c in next(book["storage-file"].iter_rows(min_row=2))]
    # Each column as wide as its longest value: the subject column holds the longest share path.
    assert book["storage-file"].column_dimensions["F"].width == len("\\\\fs01\\buf-arkiv") + 2 == 18
    assert first[5:13] == ["\\\\fs01\\buf", None, None, None, None, 4650, "GiB-days", None]
    assert FORMATS["specification"](run, [*lines, correction], context) == files  # same bytes
    # A final run's workbook has no draft line: the titles are its first row.
    assert [c.value for c in next(book["storage-file"].iter_rows())][:2] == ["municipality", "service"]
    assert book["storage-file"].freeze_panes == "A2"


def test_a_draft_runs_specification_is_named_and_headed_as_a_draft_and_the_report_links_to_it() -> None:
    run, lines = run_of(OCT, SUBJECTS)  # a draft run: a preview, not refused
    context = ExportContext(CATALOGUE, Seller("IT"), subjects=SUBJECTS)
    files = FORMATS["specification"](run, lines, context)
    assert [f.name for f in files] == [
        f"2026-10-abc.{code}.draft.specification.{ext}"
        for code in ("2121", "2132", "2161", "2182", "2183", "2184")
        for ext in ("csv", "xlsx")
    ]
    assert specification_names(run, "2183") == (
        "2026-10-abc.2183.draft.specification.xlsx",
        "2026-10-abc.2183.draft.specification.csv",
    )
    assert specification_names(replace(run, status=FINAL), "2183") == (
        "2026-10-abc.2183.specification.xlsx",
        "2026-10-abc.2183.specification.csv",
    )
    # The CSV stays machine-readable: the same bytes as the final run's, only its name says draft.
    final = FORMATS["specification"](replace(run, status=FINAL), lines, context)
    assert files[8].body == final[8].body
    book = openpyxl.load_workbook(io.BytesIO(files[9].body))
    for sheet in book.worksheets:
        assert sheet["A1"].value == "UTKAST – körningen är inte slutlig"
        assert sheet["B1"].value is None
        assert [c.value for c in sheet[2]][:3] == ["municipality", "service", "service_name"]
        assert sheet.freeze_panes == "A3"
    first = [c.value for c in next(book["storage-file"].iter_rows(min_row=3))]
    assert first[5:11] == ["\\\\fs01\\buf", None, None, None, None, 4650]
    # The draft line does not widen the first column: the longest municipality code or title is.
    assert book["storage-file"].column_dimensions["A"].width == len("municipality") + 2
    # The member report of the same draft run links to these very files.
    page = member_page(run, "2183", lines, CATALOGUE, "IT", DataQuality())
    assert '<a href="2026-10-abc.2183.draft.specification.xlsx" title="m365-e3">' in page
    assert (
        '<a href="2026-10-abc.2183.draft.specification.csv">2026-10-abc.2183.draft.specification.csv</a>'
        in page
    )
    assert ".2183.specification." not in page


def test_a_draft_specification_of_a_nok_catalogue_says_so_in_bokmal() -> None:
    run, lines = run_of(OCT, SUBJECTS)
    norwegian = CATALOGUE.model_copy(update={"locale": "nb_NO"})
    files = FORMATS["specification"](run, lines, ExportContext(norwegian, Seller("IT"), subjects=SUBJECTS))
    assert files[9].name == "2026-10-abc.2183.draft.specification.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(files[9].body))
    assert book["m365-e3"]["A1"].value == "UTKAST – kjøringen er ikke endelig"
    assert [c.value for c in book["m365-e3"][2]][:2] == ["Kommune", "Tjeneste"]
