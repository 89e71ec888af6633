"""The notebooks' side and the report (`python -m lib.report`): what every notebook does first (notebook.py),
what they show (show.py) and plot (plots.py), the sentences that read their measurements (findings.py),
what a trained network learned (insight.py), and the notebooks executed and joined into one PDF (pdf.py,
with its LaTeX template latex.tex.j2)."""
