"""Developer helper: write the next revision from the difference between ``tables.py``
and the shipped revisions.

    python -m autolabel.store.migrations new "add review notes"
    python -m autolabel.store.migrations check      # exit 1 if tables.py has unmigrated changes

It builds a scratch SQLite database at the current head, lets Alembic autogenerate
the operations (batch mode, so the same file works on SQLite and PostgreSQL) and
writes ``versions/NNNN_<slug>.py`` with ``AUTO_UPGRADE = True`` when every
operation only adds (new tables, indexes, nullable columns). Read the file before
committing it: autogenerate cannot see renames or data moves.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.operations import ops
from sqlalchemy import create_engine

from autolabel.store.migrations import alembic_config, ensure_schema, head_revision

ADDITIVE = (ops.CreateTableOp, ops.CreateIndexOp)


def _is_additive(op: Any) -> bool:
    if isinstance(op, ops.ModifyTableOps):
        return all(_is_additive(o) for o in op.ops)
    if isinstance(op, ops.AddColumnOp):
        return bool(op.column.nullable) or op.column.server_default is not None
    return isinstance(op, ADDITIVE)


def new_revision(message: str, *, write: bool = True) -> Path | None:
    """Autogenerate the next revision; None when tables.py matches the revisions."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'head.db'}")
        try:
            ensure_schema(engine, "upgrade")
            written: list[Path] = []
            with engine.begin() as conn:
                cfg = alembic_config(conn)
                template_args: dict[str, Any] = {"auto_upgrade": False}
                cfg.attributes["template_args"] = template_args

                def hook(directives: list[Any]) -> None:
                    script = directives[0]
                    if script.upgrade_ops.is_empty() or not write:
                        if not script.upgrade_ops.is_empty():
                            written.append(Path("(changes pending)"))
                        directives[:] = []
                        return
                    template_args["auto_upgrade"] = all(
                        _is_additive(o) for o in script.upgrade_ops.ops
                    )

                cfg.attributes["revision_hook"] = hook
                rev_id = f"{int(head_revision()) + 1:04d}"
                script = command.revision(cfg, message, autogenerate=True, rev_id=rev_id)
                if script is not None and not isinstance(script, list):
                    path = Path(script.path)
                    if template_args["auto_upgrade"]:
                        # Alembic renders from its own copy of the template arguments.
                        body = path.read_text(encoding="utf-8")
                        body = body.replace("AUTO_UPGRADE = False", "AUTO_UPGRADE = True", 1)
                        path.write_text(body, encoding="utf-8")
                    written.append(path)
        finally:
            engine.dispose()
    return written[0] if written else None


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "new":
        path = new_revision(argv[1])
        if path is None:
            print("tables.py matches the shipped revisions: nothing to write")
            return 0
        print(f"wrote {path}\nread it, run the store tests, and commit it with tables.py")
        return 0
    if argv == ["check"]:
        if new_revision("check", write=False) is None:
            print("tables.py matches the shipped revisions")
            return 0
        print("tables.py has changes no revision makes: python -m autolabel.store.migrations new")
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
