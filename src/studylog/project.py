"""Where a studylog project keeps things: the layout in one typed place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studylog.errors import StudylogError


@dataclass(frozen=True)
class Project:
    """A project rooted at `root`; every other path is derived from it."""

    root: Path

    @classmethod
    def at(cls, root: Path | str) -> "Project":
        """The project at `root`, which must hold a logs/ folder."""
        path = Path(root).resolve()
        if not (path / "logs").is_dir():
            raise StudylogError(
                f"{path}: no logs/ folder here; run studylog from the project root or pass --root"
            )
        return cls(path)

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def labs_dir(self) -> Path:
        return self.root / "labs"

    @property
    def site_src(self) -> Path:
        """The MkDocs docs_dir: hand-written pages tracked, generated ones not."""
        return self.root / "site_src"

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    @property
    def bibliography_file(self) -> Path:
        """The papers logs and labs cite (BibTeX); citations are rendered only when it exists."""
        return self.root / "references.bib"

    @property
    def user_config(self) -> Path:
        """The author's site settings (site name, theme, nav of hand-written pages)."""
        return self.root / "mkdocs.yml"

    @property
    def engine_config(self) -> Path:
        """The effective config studylog writes for the engine (git-ignored)."""
        return self.root / ".studylog-mkdocs.yml"

    @property
    def work_dir(self) -> Path:
        """Git-ignored working state: the generated engine config, caches."""
        return self.root / ".studylog"

    @property
    def source_roots(self) -> list[Path]:
        """Where a lab's `import x` finds project modules: src/, then labs/ itself."""
        return [self.root / "src", self.labs_dir]

    def rel(self, path: Path) -> Path:
        """`path` relative to the project root when it is inside it, for messages."""
        try:
            return path.relative_to(self.root)
        except ValueError:
            return path

    def lab_names(self) -> set[str]:
        """Stems of labs/*.py: the names a log's `labs` list may use."""
        if not self.labs_dir.is_dir():
            return set()
        return {p.stem for p in self.labs_dir.glob("*.py") if not p.name.startswith("_")}
