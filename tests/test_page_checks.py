"""The built-page checks catch what they are for: planted pages."""

from page_checks import page_problems


def page(title="Chapter 5: naive Bayes needs O(log n) samples", outputs=()):
    return {"frontmatter": {"title": title},
            "mdast": {"type": "root", "children": [{"type": "output", "data": list(outputs)}]}}


def test_a_clean_page_passes():
    claim = "[PASS] icl.eta-mc  0.4318 vs 0.4321 ± 0.002 (z = -0.3)\n       [prediction] step size\n"
    assert page_problems(page(outputs=[{"output_type": "stream", "name": "stdout", "text": claim}])) == []


def test_a_planted_claim_repr_is_caught():
    repr_ = {"output_type": "execute_result",
             "data": {"text/plain": {"content": "Claim(id='icl.x', statement='s', measured=1.0)"}}}
    assert any("raw repr" in p for p in page_problems(page(outputs=[repr_])))


def test_a_widget_repr_without_a_richer_format_is_caught():
    widget = {"output_type": "display_data",
              "data": {"text/plain": "VBox(children=(HBox(children=(IntSlider(value=20,"}}
    assert any("raw repr" in p for p in page_problems(page(outputs=[widget])))


def test_a_planted_latex_title_is_caught():
    assert any("LaTeX" in p for p in page_problems(page(title="needs $O(\\log n)$ samples")))


def test_a_long_claim_line_is_caught():
    line = "[PASS] icl.x  " + "1" * 100
    assert any("wider" in p for p in page_problems(page(outputs=[{"output_type": "stream", "text": line}])))
