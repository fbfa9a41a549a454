"""One Jinja2 set-up for every page and mail patchflow renders (reports, the reports index, e-mail).

Every renderer gets the same rules, so no page can be the one that forgot one:

- templates are package data in a ``templates`` folder beside the module that renders them;
- autoescape is on for everything but plain-text templates (``*.txt.j2``): a value that came
  from the API is always text, never markup, and nobody escapes by hand;
- an undefined name is an error (``StrictUndefined``), not a silently empty cell;
- the rendered text goes through :func:`~include.text_safety.visible_text`, so no
  control character from the API reaches a page or a mail (it is shown as a visible stand-in).

Python prepares plain view models (dataclasses, dicts); templates only display them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2

from include.text_safety import visible_text

#: Template names that are escaped (markup); any other name is escaped too unless plain text.
MARKUP_EXTENSIONS = ("html.j2", "svg.j2", "html", "svg")
PLAIN_TEXT_EXTENSIONS = ("txt.j2", "txt")
#: How an absent value (``None`` or an empty string) is shown in a page.
ABSENT = "\u2014"


def dash(value: Any) -> Any:
    """``value`` as it is, or an em dash when there is nothing to show (``None`` or ``""``)."""
    return ABSENT if value is None or value == "" else value


def build_environment(folder: Path, names: Mapping[str, Any] | None = None) -> jinja2.Environment:
    """The Jinja2 environment over ``folder`` with patchflow's rendering rules.

    ``names`` are globals every template of the folder sees, e.g. the ``StrEnum`` a template
    compares a state with (so a renamed member fails loudly instead of matching nothing).
    """
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=MARKUP_EXTENSIONS,
            disabled_extensions=PLAIN_TEXT_EXTENSIONS,
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["dash"] = dash
    environment.globals.update(names or {})
    return environment


class Templates:
    """The ``templates`` folder beside one module, rendered with the rules above.

    ``Templates(__file__)`` in the rendering module; the environment is built on first use.
    """

    def __init__(self, module_file: str | Path, names: Mapping[str, Any] | None = None) -> None:
        self.folder = Path(module_file).resolve().parent / "templates"
        self.names = dict(names or {})

    @cached_property
    def environment(self) -> jinja2.Environment:
        return build_environment(self.folder, self.names)

    def render(self, name: str, /, **context: Any) -> str:
        """Template ``name`` filled with ``context``; control characters made visible."""
        return visible_text(self.environment.get_template(name).render(**context))
