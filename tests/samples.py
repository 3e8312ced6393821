"""Sample documents shared by tests in several folders: article sentences, a web page, PDF and DOCX makers."""

from __future__ import annotations

from pathlib import Path

KRONSTADT = "The Kronstadt rebellion was a 1921 uprising of sailors, soldiers and civilians against the Bolshevik government."
CAUSES = "Famine, forced grain requisitions and the repression of strikes in Petrograd caused wide discontent among the sailors."
SHLYAPNIKOV = "The Workers Opposition was led by Alexander Shlyapnikov and Alexandra Kollontai, who wanted the trade unions to run industry."
BANNED = "The faction was banned at the Tenth Party Congress in March 1921, and many of its members were expelled later."

PAGE_HTML = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Kronstadt rebellion</title>
<style>p {{ color: red }}</style><script>var secret = "SCRIPTTEXT";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">NAVTEXT</a></nav>
<header>HEADERTEXT</header>
<main>
  <h1>Kronstadt rebellion</h1>
  <p>{KRONSTADT}</p>
  <!-- COMMENTTEXT -->
  <h2>Causes</h2>
  <p>{CAUSES.replace("repression", "<em>repression</em>")}</p>
  <div hidden>HIDDENTEXT</div>
  <ul><li>Petrograd strikes</li><li>Grain requisitions</li></ul>
  <h2>Aftermath</h2>
  <div>The uprising was <a href="/x">crushed</a> in March 1921.<br>Survivors fled to Finland.</div>
  <noscript>NOSCRIPTTEXT</noscript>
</main>
<aside>ASIDETEXT</aside>
<footer>FOOTERTEXT</footer>
</body></html>
"""


def make_pdf(path: Path, pages: list[tuple[str | None, list[str]]], title: str | None = None) -> Path:
    """A PDF with a text layer: one page per item, (outline heading or None, paragraphs)."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("helvetica", size=11)
    for heading, paragraphs in pages:
        pdf.add_page()
        if heading:
            pdf.start_section(heading)
        for para in paragraphs:
            pdf.multi_cell(0, 6, para)
            pdf.ln(6)
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path) -> Path:
    """A PDF whose only page is a drawing: no text layer, like a scan."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path


def make_docx(path: Path, title_style: bool = True, core_title: str = "") -> Path:
    """A Word document with a Title paragraph, two headings, body paragraphs and a table."""
    import docx

    d = docx.Document()
    d.core_properties.title = core_title
    if title_style:
        d.add_heading("Kronstadt 1921", level=0)
    d.add_paragraph(KRONSTADT)
    d.add_heading("Causes", level=1)
    d.add_paragraph(CAUSES)
    table = d.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "Date", (0, 1): "Event", (1, 0): "1 March 1921", (1, 1): "Petropavlovsk resolution"}.items():
        table.cell(r, c).text = text
    d.add_heading("Aftermath", level=2)
    d.add_paragraph("The uprising was crushed in March 1921.")
    d.save(str(path))
    return path
