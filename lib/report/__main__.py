"""python -m lib.report: the command line of the report (lib/report/pdf.py)."""
from pathlib import Path

from lib.data import ROOT
from lib.report import pdf


def main(argv=None):
    from lib.util.cli import Parser, first_paragraph
    from lib.config import positive_int
    p = Parser(prog="python -m lib.report", description=first_paragraph(pdf.__doc__))
    p.add_argument("--only", choices=tuple(pdf.PARTS), default="all",
                   help="all: the nine notebooks into report.pdf (the default); assignment: notebooks 1-5, the "
                        "report a student hands in, into assignment.pdf")
    p.add_argument("--steps", type=positive_int, default=pdf.FULL_STEPS, help="training updates (default 100000)")
    p.add_argument("--corpus", default=None, help="a text file (default: goblet_book.txt or the default corpus)")
    p.add_argument("--out", default=str(ROOT / "report"),
                   help="the folder of the PDF and the executed notebooks (default: report/)")
    args = p.parse_args(argv)
    corpus = None if args.corpus is None else str(Path(args.corpus).absolute())   # the notebooks run in notebooks/
    pdf.check_before(args.out, args.steps, corpus, args.only)
    pdf.build(args.out, args.steps, corpus, only=args.only)


if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
