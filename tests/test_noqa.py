"""`# noqa` directives: parsing, logical lines, file-level exemptions, malformed codes, and `add_noqa`."""

from __future__ import annotations

import textwrap

import pytest

from fastsqla_lint.noqa import ALL, _scan_comments, add_noqa, parse_directive, parse_noqa


def noqa(text: str):
    return parse_noqa(textwrap.dedent(text).lstrip("\n"))


@pytest.mark.parametrize(
    "comment, codes",
    [
        ("# noqa", None),
        ("#noqa", None),
        ("# NOQA", None),
        ("# noqa: FSL005", ("FSL005",)),
        ("# noqa:FSL005", ("FSL005",)),
        ("# noqa : FSL005", ("FSL005",)),
        ("# noqa: FSL005,FSL001", ("FSL005", "FSL001")),
        ("# noqa: FSL005, FSL001", ("FSL005", "FSL001")),
        ("# noqa: FSL005 FSL001", ("FSL005", "FSL001")),
        ("# noqa: fsl005", ("FSL005",)),
        ("# noqa: FSL005 -- the engine is per request", ("FSL005",)),
        ("# type: ignore  # noqa: FSL005", ("FSL005",)),
        ("# noqa: E501", ("E501",)),
    ],
)
def test_directive_codes(comment, codes):
    d = parse_directive(comment)
    assert d is not None
    assert d.codes == codes
    assert d.warning is None


@pytest.mark.parametrize("comment", ["# not a noqa", "# noqanything", "# noqa-like", "# fastsqla-lint: noqa"])
def test_not_a_line_directive(comment):
    assert parse_directive(comment) is None


@pytest.mark.parametrize("comment", ["# noqa:", "# noqa: ", "# noqa: FSL-005", "# noqa: , FSL005"])
def test_malformed_codes_suppress_nothing_and_warn(comment):
    d = parse_directive(comment)
    assert d is not None and d.codes == ()
    assert "expected a list of codes" in d.warning
    m = parse_noqa(f"x = 1  {comment}\n")
    assert m.suppresses("FSL005", 1) is None
    assert m.warnings and m.warnings[0][0] == 1


def test_codes_without_colon_count_with_a_warning():
    m = parse_noqa("x = 1  # noqa FSL005\n")
    assert m.suppresses("FSL005", 1) == 1
    assert m.suppresses("FSL001", 1) is None
    assert m.warnings == [(1, "missing `:` between `noqa` and its codes")]


def test_line_noqa():
    m = noqa(
        """
        a = 1  # noqa: FSL005
        b = 2  # noqa
        c = 3  # noqa: E501
        d = 4
        """
    )
    assert m.suppresses("FSL005", 1) == 1
    assert m.suppresses("FSL001", 1) is None
    assert m.suppresses("FSL001", 2) == 2
    assert m.suppresses("FSL005", 3) is None  # another tool's code
    assert m.suppresses("FSL005", 4) is None


def test_noqa_inside_a_string_does_not_count():
    m = noqa(
        '''
        a = "# noqa"
        b = """
        # noqa: FSL005
        """
        c = f"{a} # noqa"  # real comment
        '''
    )
    assert m.line_codes == {}
    assert m.suppresses("FSL005", 1) is None
    assert m.suppresses("FSL005", 3) is None


def test_multiline_statement_noqa_on_any_line():
    m = noqa(
        """
        engine = create_engine(
            "sqlite:///./app.db",  # noqa: FSL005
            echo=True,
        )
        other = create_engine("sqlite://")
        call(
            x,
        )  # noqa
        """
    )
    for line in (1, 2, 3, 4):
        assert m.suppresses("FSL005", line) == 2
    assert m.suppresses("FSL005", 5) is None  # the next statement is not covered
    assert m.suppresses("FSL001", 1) is None
    assert m.suppresses("FSL001", 6) == 8


def test_compound_statement_header_is_one_logical_line_but_its_body_is_not():
    m = noqa(
        """
        def handler(
            db=Depends(get_db),
        ):  # noqa: FSL101
            return db
        """
    )
    assert m.suppresses("FSL101", 2) == 3
    assert m.suppresses("FSL101", 4) is None


def test_backslash_continuation():
    m = noqa(
        """
        x = 1 + \\
            2  # noqa: FSL005
        """
    )
    assert m.suppresses("FSL005", 1) == 2


def test_file_level_exemption():
    m = noqa(
        """
        # fastsqla-lint: noqa
        x = 1
        """
    )
    assert m.file_codes == {ALL}
    assert m.suppresses("FSL005", 2) == 0


def test_file_level_exemption_with_codes():
    m = noqa(
        """
        import x
        #   fastsqla-lint:noqa: FSL005, FSL001
        """
    )
    assert m.file_codes == {"FSL005", "FSL001"}
    assert m.suppresses("FSL005", 1) == 0
    assert m.suppresses("FSL003", 1) is None


def test_file_level_exemption_after_code_is_ignored_with_a_warning():
    m = parse_noqa("x = 1  # fastsqla-lint: noqa\n")
    assert m.file_codes == set()
    assert m.suppresses("FSL005", 1) is None
    assert "own line" in m.warnings[0][1]


def test_malformed_file_level_exemption_warns():
    m = parse_noqa("# fastsqla-lint: noqa:\nx = 1\n")
    assert m.file_codes == set()
    assert m.warnings and m.warnings[0][0] == 1


def test_text_that_does_not_tokenize_falls_back_to_a_scanner():
    # an unclosed bracket makes `tokenize` fail; the scanner still finds real comments only
    text = 'x = "# noqa"\ny = f(\n    1,  # noqa: FSL005\n'
    m = parse_noqa(text)
    assert m.suppresses("FSL005", 3) == 3
    assert m.suppresses("FSL005", 1) is None


def test_scanner_logical_lines_and_strings():
    logical: dict = {}
    text = 'a = (\n  "x # y",\n)  # noqa\nb = """\n# noqa\n"""\nc = 1 \\\n  + 2\n'
    comments = _scan_comments(text, logical)
    assert [(line, own) for line, own, _ in comments] == [(3, False)]
    assert logical[1] == (1, 3) and logical[3] == (1, 3)
    assert logical[4] == (4, 6)
    assert logical[7] == (7, 8)


def test_file_without_noqa_is_cheap_and_empty():
    m = parse_noqa("x = 1\n")
    assert (m.file_codes, m.line_codes, m.logical) == (set(), {}, {})


# -- add_noqa ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("x = f()\n", "x = f()  # noqa: FSL005\n"),
        ("x = f()   \r\n", "x = f()  # noqa: FSL005\r\n"),
        ("x = f()", "x = f()  # noqa: FSL005"),
        ("x = f()  # noqa: FSL001\n", "x = f()  # noqa: FSL001, FSL005\n"),
        ("x = f()  # noqa:E501 long line\n", "x = f()  # noqa: E501, FSL005 long line\n"),
        ("x = f()  # noqa: FSL005\n", "x = f()  # noqa: FSL005\n"),
        ("x = f()  # noqa\n", "x = f()  # noqa\n"),
        ("x = f()  # noqa:\n", "x = f()  # noqa: FSL005\n"),
        ("x = f()  # keep me\n", "x = f()  # keep me  # noqa: FSL005\n"),
        ('x = "# noqa"\n', 'x = "# noqa"  # noqa: FSL005\n'),
        ("    engine = create_engine(\n", "    engine = create_engine(  # noqa: FSL005\n"),
    ],
)
def test_add_noqa(line, expected):
    assert add_noqa(line, "FSL005") == expected


def test_add_noqa_result_suppresses_the_code():
    line = add_noqa("engine = create_engine(url)  # noqa: FSL001\n", "fsl005")
    m = parse_noqa(line)
    assert m.suppresses("FSL005", 1) == 1
    assert m.suppresses("FSL001", 1) == 1


# -- through the engine ----------------------------------------------------------------------------------


def test_engine_honours_noqa_on_any_line_of_the_statement():
    import libcst as cst

    from fastsqla_lint import engine
    from fastsqla_lint.rule import Rule

    class CallToF(Rule):
        code = "FSL998"
        name = "call-to-f"
        message = "`f()` called"

        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Name) and node.func.value == "f":
                self.report(node)

    text = textwrap.dedent(
        """
        a = f(
            1,  # noqa: FSL998
        )
        b = f(
            2,
        )  # noqa: FSL001
        c = "# noqa"; d = f()
        """
    ).lstrip("\n")
    found = engine.lint_text(text, "t.py", rules=[CallToF]).diagnostics
    assert [(x.code, x.start.line) for x in found] == [("FSL998", 4), ("FSL998", 7)]
    text = "# fastsqla-lint: noqa: FSL998\n" + text
    assert engine.lint_text(text, "t.py", rules=[CallToF]).diagnostics == []
