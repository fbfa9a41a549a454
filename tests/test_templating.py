"""The one Jinja2 set-up of every page and mail (include/templating.py), and the rule that no
product code builds HTML or escapes by hand any more (issue 9, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest

from include.templating import ABSENT, Templates, build_environment

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [ROOT / "include", ROOT / "plugins", ROOT / "dags"]
HOSTILE = '<script>alert(1)</script>"'


def templates(tmp_path: Path, files: dict[str, str]) -> Templates:
    folder = tmp_path / "templates"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return Templates(tmp_path / "renderer.py")


def test_markup_templates_escape_every_value_in_text_and_attributes(tmp_path):
    t = templates(
        tmp_path,
        {
            "page.html.j2": '<p title="{{ v }}">{{ v }}</p>',
            "chart.svg.j2": "<text>{{ v }}</text>",
            "unknown.j2": "{{ v }}",  # an unfamiliar suffix is escaped too (the safe default)
        },
    )
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;"
    assert t.render("page.html.j2", v=HOSTILE) == f'<p title="{escaped}">{escaped}</p>'
    assert t.render("chart.svg.j2", v=HOSTILE) == f"<text>{escaped}</text>"
    assert t.render("unknown.j2", v=HOSTILE) == escaped


def test_plain_text_templates_are_not_escaped(tmp_path):
    t = templates(tmp_path, {"mail.txt.j2": "Reason: {{ v }}"})
    assert t.render("mail.txt.j2", v=HOSTILE) == f"Reason: {HOSTILE}"


def test_an_undefined_name_is_an_error_not_an_empty_cell(tmp_path):
    t = templates(tmp_path, {"page.html.j2": "<td>{{ row.missing }}</td>"})
    with pytest.raises(jinja2.UndefinedError):
        t.render("page.html.j2", row={"server_id": "va1web01"})


def test_control_characters_are_shown_as_visible_stand_ins(tmp_path):
    t = templates(tmp_path, {"page.html.j2": "<td>{{ v }}</td>", "mail.txt.j2": "{{ v }}"})
    assert t.render("page.html.j2", v="db\x00\x1b[2J\ud800") == "<td>db\u2400\u241b[2J\ufffd</td>"
    assert t.render("mail.txt.j2", v="a\x07b\tc") == "a\u2407b\tc"


def test_an_absent_value_shows_as_a_dash_and_zero_stays_zero(tmp_path):
    t = templates(tmp_path, {"cell.html.j2": "{{ v|dash }}"})
    assert [t.render("cell.html.j2", v=v) for v in (None, "", 0, "x")] == [ABSENT, ABSENT, "0", "x"]


def test_globals_given_to_a_folder_are_seen_by_its_templates(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.html.j2").write_text("{{ Answer }}")
    assert build_environment(folder, {"Answer": 42}).get_template("t.html.j2").render() == "42"


# --- policy over the real templates and the product code ----------------------------------------


def template_folders() -> list[Path]:
    return sorted(p for base in PRODUCT for p in base.rglob("templates") if p.is_dir())


def test_every_product_template_compiles_with_autoescape_unless_plain_text():
    folders = template_folders()
    assert {f.relative_to(ROOT).as_posix() for f in folders} >= {
        "include/reporting/templates",
        "plugins/patchflow/templates",
    }
    for folder in folders:
        environment = build_environment(folder)
        for path in folder.iterdir():
            template = environment.get_template(path.name)  # a syntax error fails here
            plain = path.name.endswith(".txt.j2")
            assert environment.autoescape(path.name) is not plain, path
            assert template is not None
            source = path.read_text(encoding="utf-8")
            assert "|safe" not in source.replace(" ", "") and "autoescape false" not in source, path


#: Hand escaping, or a way around autoescape, in Python product code.
HAND_ESCAPING = re.compile(
    r"\bhtml\.escape\b|\bfrom html import\b|^import html\b|\bmarkupsafe\b|\bMarkup\(", re.M
)
#: A Python string literal that starts an HTML or SVG element: markup built outside a template.
MARKUP_LITERAL = re.compile(
    r"""(?:^|[\s(\[{,=+])[rbfu]{0,2}["']<(?:!doctype|/?(?:html|head|body|div|span|p|a|table|thead|tbody"""
    r"""|tr|th|td|ul|li|h[1-6]|code|pre|br|strong|style|title|svg|rect|text|figure))\b""",
    re.I | re.M,
)


def product_python() -> list[Path]:
    """Product code only: the simulator (top-level simulator/, dev tooling) imitates the cloud, and
    its ``garbage`` fault answers with a fixed imitation of a proxy's HTML page, no value in it."""
    return sorted(p for base in PRODUCT for p in base.rglob("*.py"))


def test_no_product_code_escapes_html_by_hand_or_builds_markup_in_strings():
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in product_python()
        for pattern in (HAND_ESCAPING, MARKUP_LITERAL)
        for match in pattern.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
