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


def figure_output(width=None, path="/fig.png"):
    output = {"output_type": "display_data",
              "data": {"text/plain": {"content": "<Figure size 1690x330 with 4 Axes>"},
                       "image/png": {"content_type": "image/png", "path": path}}}
    if width is not None:       # a retina figure's display size
        output["metadata"] = {"image/png": {"width": width, "height": 300}}
    return output


def sizes(**by_path):
    return lambda path: by_path[path.strip("/").replace(".png", "")]


def test_a_planted_too_wide_figure_is_caught():
    # chapter 4's four-panel fallback as it was: 1691 px laid out at 1691 px, shown at 0.43x
    problems = page_problems(page(outputs=[figure_output(width=1691)]), image_size=sizes())
    assert any("1691 px wide" in p for p in problems), problems
    # without a display size the PNG's own pixels are its width
    strip = page(outputs=[figure_output(path="/strip.png")])
    problems = page_problems(strip, image_size=sizes(strip=(1304, 166)))
    assert any("1304 px wide" in p for p in problems), problems


def test_figures_that_fit_pass():
    fits = [figure_output(width=651),                                    # one panel, retina
            figure_output(width=1000, path="/big.png"),                  # 1.38x: legends still 9 px
            figure_output(path="/small.png")]                            # no metadata, 700 px PNG
    assert page_problems(page(outputs=fits), image_size=sizes(big=(2000, 800), small=(700, 400))) == []
    # a retina figure's PNG has twice its display width in pixels: the display width counts
    retina = page(outputs=[figure_output(width=700, path="/r.png")])
    assert page_problems(retina, image_size=sizes(r=(1400, 800))) == []


def test_png_size_reads_the_header(tmp_path):
    import struct
    import zlib

    from page_checks import png_size

    header = struct.pack(">IIBBBBB", 37, 11, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    crc = struct.pack(">I", zlib.crc32(chunk))
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(header)) + chunk + crc)
    assert png_size(tmp_path / "a.png") == (37, 11)
