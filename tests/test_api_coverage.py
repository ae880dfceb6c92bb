"""The API coverage table (docs/api-coverage.md) agrees with the code.

When this fails because a name was added to (or removed from) sporax, regenerate the table with
``python tools/api_coverage.py --write`` and commit it.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import api_coverage  # noqa: E402

FIX = "regenerate the table with `python tools/api_coverage.py --write` and commit docs/api-coverage.md"


def _committed() -> dict:
    with open(api_coverage.TABLE) as f:
        return api_coverage.parse_table(f.read())


def test_the_table_lists_every_reference_name():
    _, modules = api_coverage.reference()
    table = _committed()
    assert list(table) == list(modules)
    for module, names in modules.items():
        assert set(table[module]) == set(names), f"{module}: the table's names differ from the reference list; {FIX}"


def test_sporax_has_exactly_the_names_the_table_says():
    table = _committed()
    live = api_coverage.presence()
    gained = sorted(f"{m}.{n}" for m in live for n, has in live[m].items() if has and not table[m][n])
    lost = sorted(f"{m}.{n}" for m in live for n, has in live[m].items() if not has and table[m][n])
    assert not gained, f"sporax now has names the table says are missing: {gained[:30]}; {FIX}"
    assert not lost, f"sporax lacks names the table says it has: {lost[:30]}; {FIX}"


def test_every_missing_name_is_planned_or_out_of_scope_with_a_reason():
    text = open(api_coverage.TABLE).read()
    rows = [line for line in text.splitlines() if line.startswith("| `") and "| no |" in line]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] in (api_coverage.PLANNED, api_coverage.OUT) and cells[4], row
    # a few classifications that matter to users
    assert api_coverage.classify("mindspore.ops", "flash_attention_score", "function")[0] == api_coverage.OUT
    assert api_coverage.classify("mindspore", "load_mindir", "function")[0] == api_coverage.OUT
    assert api_coverage.classify("mindspore.ops", "Conv3D", "class")[0] == api_coverage.PLANNED


def test_parse_table_reads_what_render_writes():
    assert api_coverage.parse_table(api_coverage.render()) == api_coverage.presence()
