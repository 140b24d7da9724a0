"""Pages made from the code at build time (conf.py calls :func:`write_all`).

Kept apart from conf.py so that a test can run it without Sphinx and check
that the pages say what the code says.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
GENERATED = HERE / "_generated"


def backends_table() -> str:
    """The support matrix, rendered from ``xplearn._support.SUPPORT``."""
    from xplearn._support import rst_table

    return rst_table()


def write_all(folder: Path = GENERATED) -> list[Path]:
    """Write every generated fragment into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "backends_table.rst"
    text = backends_table()
    if not path.exists() or path.read_text() != text:  # keep Sphinx's cache warm
        path.write_text(text)
    return [path]


def check_built(html: Path) -> list[str]:
    """What is missing from a built site: gallery pages without their figures."""
    problems = []
    examples = sorted((HERE.parent / "examples").glob("plot_*.py"))
    for script in examples:
        page = html / "auto_examples" / f"{script.stem}.html"
        if not page.exists():
            problems.append(f"{page} was not built")
        elif f"sphx_glr_{script.stem}_001.png" not in page.read_text():
            problems.append(f"{page} has no figure")
        else:
            shown = re.findall(r'src="[^"]*?([^"/]+\.png)"', page.read_text())
            problems.extend(
                f"{page} shows {name}, which was not written"
                for name in shown
                if not (html / "_images" / name).exists()
            )
    return problems


if __name__ == "__main__":
    import sys

    found = check_built(Path(sys.argv[1]))
    print("\n".join(found) or "every gallery page has its figures")
    sys.exit(1 if found else 0)
