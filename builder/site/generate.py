"""The site's sources, generated before any engine runs.

Takes: the catalog, probes.yaml (or the built-in Falco table) and the site's source
configuration (the repository's mkdocs.yml: theme, nav, Markdown extensions, docs/).
Gives: a work folder (git ignores it) that any engine reading mkdocs.yml can render,
and the JSON API, which no engine touches:

    <work>/mkdocs.yml   the engine's configuration: the source one with docs_dir pages/,
                        the theme override, our styles and scripts, the generated pages
                        kept out of the nav, the passthrough extension; no plugin
    <work>/pages/       docs/ copied, every generated page (front matter, its heading in
                        Markdown, then the HTML our templates rendered) and our assets
    <work>/theme/       the theme override (main.html)
    <work>/api/         api/index.json, probe lists, SHA256SUMS, lookup files: placed into
                        the built site after the engine ran (engine.place_api)
    <work>/state.json   the input digest of every page group and driver version's API

The engine then only renders theme, nav and search. A second run renders only what
changed: a table page's group is keyed by the digests of its catalog files, a driver
version's API files by those of its folder; the rest (home, index pages, the lookups
spanning driver versions) is recomputed and written only where its bytes changed, so
an engine that rebuilds by modification time (MkDocs --dirty) sees only what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from html import unescape
from pathlib import Path
from typing import Any

import yaml

from builder.core.catalog import Catalog, FileKey, catalog_files, load_catalog
from builder.core.config import Config, falco_releases, load_config
from builder.core.errors import InputError
from builder.core.files import atomic_write
from builder.site import api, layout
from builder.site.model import SiteModel, build_site, coverage_pages, table_pages
from builder.site.passthrough import MARKER
from builder.site.render import PAGE_BUDGET, GeneratedPage, Renderer

HERE = Path(__file__).parent
ASSETS = HERE / "assets"
THEME = HERE / "theme"
TEMPLATES = HERE / "templates"
PASSTHROUGH = "builder.site.passthrough"
PAGES = "pages"
API = "api"
STATE = "state.json"
ENGINE_CONFIG = "mkdocs.yml"
ENGINE_SITE = "site"            # the engine's own output folder, inside the work folder
STATE_VERSION = 1
# Pages linked from mkdocs.yml's nav; every other generated page stays out of it
# (navigation is rendered into every page: 1,800 table pages must not be in it).
IN_NAV = (layout.HOME, layout.DRIVERS, layout.TARGETS, layout.FAILURES)
NOT_IN_NAV = ("/drivers/*/", "/targets/*/", "/failures/*/")
_HEADING = re.compile(r'\A\s*<h1 id="([^"]+)">(.*?)</h1>\s*', re.DOTALL)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|-])")
log = logging.getLogger(__name__)   # the command line shows it (ui.show_library_messages)


def write_file(path: Path, data: str | bytes) -> bool:
    """Atomically, readable by any web server (0644); False when the bytes were there."""
    if not atomic_write(path, data, durable=False):
        return False
    path.chmod(0o644)
    return True


# --- the source configuration ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SiteSource:
    """The repository's mkdocs.yml and what it says about the site's inputs."""

    path: Path
    config: Mapping[str, Any]
    docs_dir: Path
    catalog: Path
    probes_yaml: Path
    drivers_repo: str = ""
    page_budget: int = PAGE_BUDGET
    use_directory_urls: bool = True

    @property
    def root(self) -> Path:
        return self.path.parent


def read_source(path: Path, *, catalog: Path | None = None,
                probes_yaml: Path | None = None) -> SiteSource:
    """mkdocs.yml with `extra: falco_probes:` (catalog, config, drivers_repo, page_budget);
    `catalog` and `probes_yaml` (from the command line or the environment) win."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file", hint="run from the repository root, or "
                         "pass --mkdocs with the site's mkdocs.yml") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not YAML that safe_load reads: {exc}",
                         hint="the site's mkdocs.yml must be plain YAML (no !!python tags)"
                         ) from None
    if not isinstance(config, dict):
        raise InputError(f"{path}: not a mapping", hint="see mkdocs.yml in the repository")
    ours = (config.get("extra") or {}).get("falco_probes") or {}
    if not isinstance(ours, dict):
        raise InputError(f"{path}: extra.falco_probes is not a mapping",
                         hint="catalog, config, drivers_repo and page_budget go there")
    repo = str(ours.get("drivers_repo") or "")
    if repo and not re.fullmatch(r"https?://[^\s<>\"'`\\]+", repo):
        raise InputError(f"{path}: extra.falco_probes.drivers_repo {repo!r} is not an "
                         "http(s) URL", hint="give the URL a directory store is served at, or "
                         "leave it empty")
    budget = ours.get("page_budget", PAGE_BUDGET)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1000:
        raise InputError(f"{path}: extra.falco_probes.page_budget {budget!r} is not a "
                         "number of bytes of at least 1000", hint=f"the default is {PAGE_BUDGET}")
    root = path.parent
    return SiteSource(
        path=path, config=config, docs_dir=root / str(config.get("docs_dir") or "docs"),
        catalog=catalog or root / str(ours.get("catalog") or "catalog"),
        probes_yaml=probes_yaml or root / str(ours.get("config") or "probes.yaml"),
        drivers_repo=repo, page_budget=budget,
        use_directory_urls=bool(config.get("use_directory_urls", True)))


def engine_config(source: SiteSource) -> dict[str, Any]:
    """The engine's mkdocs.yml: the source's, reading the generated pages."""
    config = {k: v for k, v in source.config.items() if k not in ("hooks",)}
    config["docs_dir"] = PAGES
    config["site_dir"] = ENGINE_SITE
    theme = dict(config.get("theme") or {"name": "material"})
    theme["custom_dir"] = "theme"
    config["theme"] = theme
    config["extra_css"] = [*config.get("extra_css", []), layout.asset("site.css")]
    config["extra_javascript"] = [*config.get("extra_javascript", []),
                                  *(layout.asset(s) for s in layout.SCRIPTS)]
    extensions = [e for e in config.get("markdown_extensions", []) if e != PASSTHROUGH]
    config["markdown_extensions"] = [PASSTHROUGH, *extensions]
    config["plugins"] = [p for p in config.get("plugins", ["search"])
                         if not (p == "falco-probes" or (isinstance(p, dict)
                                                         and "falco-probes" in p))]
    config["not_in_nav"] = "\n".join(NOT_IN_NAV) + "\n"
    extra = {k: v for k, v in (config.get("extra") or {}).items() if k != "falco_probes"}
    if extra:
        config["extra"] = extra
    else:
        config.pop("extra", None)
    return config


# --- a generated page as a file ------------------------------------------------------------

def markdown_escape(text: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def page_source(page: GeneratedPage) -> str:
    """Front matter, the page's heading as Markdown (the engine makes it the page's
    outline: the skip link points there), then the rendered HTML after the marker."""
    heading = _HEADING.match(page.html)
    body = page.html
    lines = [page.markdown().rstrip("\n"), ""]
    if heading:
        title = markdown_escape(unescape(re.sub(r"<[^>]+>", "", heading[2])))
        lines += [f"# {title} {{#{heading[1]}}}", ""]
        body = page.html[heading.end():]
    lines += [MARKER, body.strip(), ""]
    return "\n".join(lines)


# --- digests --------------------------------------------------------------------------------

def _digest(*parts: object) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(json.dumps(part, sort_keys=True, default=str).encode())
        hasher.update(b"\0")
    return hasher.hexdigest()


def code_digest() -> str:
    """The site's own code, templates, assets and theme: any change renders everything."""
    hasher = hashlib.sha256()
    for folder in (HERE, TEMPLATES, ASSETS, THEME):
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix in (".py", ".j2", ".js", ".css", ".html"):
                hasher.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()


def catalog_digests(root: Path) -> dict[FileKey, str]:
    """sha256 of every catalog file's bytes, by (driver version, arch, target)."""
    out: dict[FileKey, str] = {}
    for path in catalog_files(root):
        parts = path.relative_to(root).parts
        if len(parts) == 3 and parts[2].endswith(".yaml"):
            key = (parts[0], parts[1], parts[2].removesuffix(".yaml"))
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# --- the run --------------------------------------------------------------------------------

@dataclass
class Generated:
    """What a run did: pages and API files written, reused (inputs unchanged) and removed."""

    work: Path
    pages: int = 0
    pages_rendered: int = 0
    pages_written: int = 0
    api_files: int = 0
    api_written: int = 0
    removed: int = 0
    probes: int = 0
    failures: int = 0
    changed_pages: list[str] = field(default_factory=list)

    @property
    def pages_dir(self) -> Path:
        return self.work / PAGES

    @property
    def api_dir(self) -> Path:
        return self.work / API

    @property
    def config_file(self) -> Path:
        return self.work / ENGINE_CONFIG


@dataclass
class _State:
    version: int = STATE_VERSION
    salt: str = ""
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    api: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)      # everything written under pages/
    engine: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> _State:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            return cls()
        return cls(STATE_VERSION, str(data.get("salt", "")), dict(data.get("groups", {})),
                   dict(data.get("api", {})), list(data.get("files", [])),
                   dict(data.get("engine", {})))

    def write(self, path: Path) -> None:
        write_file(path, json.dumps({"version": self.version, "salt": self.salt,
                                       "groups": self.groups, "api": self.api,
                                       "files": self.files, "engine": self.engine},
                                      sort_keys=True) + "\n")


def read_state(work: Path) -> dict[str, Any]:
    """What the last run recorded for the engine (engine.py keeps its own notes there)."""
    return _State.read(work / STATE).engine


def write_engine_state(work: Path, engine: Mapping[str, Any]) -> None:
    state = _State.read(work / STATE)
    state.engine = dict(engine)
    state.write(work / STATE)


def load_site(source: SiteSource) -> tuple[SiteModel, Config | None]:
    """The catalog and probes.yaml as the page models take them."""
    config = load_config(source.probes_yaml) if source.probes_yaml.exists() else None
    releases = falco_releases(config)
    catalog = load_catalog(source.catalog) if source.catalog.exists() else \
        Catalog(source.catalog)
    return build_site(catalog, releases), config


def generate(source: SiteSource, work: Path, *, force: bool = False) -> Generated:
    """Write (or bring up to date) the work folder for `source`; see the module's doc."""
    work.mkdir(parents=True, exist_ok=True)
    state = _State() if force else _State.read(work / STATE)
    model, config = load_site(source)
    digests = catalog_digests(source.catalog) if source.catalog.exists() else {}
    config_bytes = source.probes_yaml.read_bytes() if config is not None else b""
    salt = _digest(code_digest(), hashlib.sha256(config_bytes).hexdigest(),
                   source.drivers_repo, source.page_budget, source.use_directory_urls)
    if state.salt != salt:
        state = _State(salt=salt, engine=state.engine)
    done = Generated(work, probes=model.totals.probes, failures=model.totals.failures)
    renderer = Renderer(model, use_directory_urls=source.use_directory_urls,
                        page_budget=source.page_budget, drivers_repo=source.drivers_repo,
                        config=config)
    written, always = _write_pages(source, work, state, model, renderer, digests, done)
    docs = _copy_docs(source, work / PAGES, written, done)
    written |= docs | _copy_assets(work, done)
    done.removed += _remove_stale(work / PAGES, set(state.files) - written)
    state.files = sorted(written)
    engine_yml = ("# Generated by `falco-probes site generate` from "
                  f"{source.path.name}; do not edit.\n" +
                  yaml.safe_dump(engine_config(source), sort_keys=False, allow_unicode=True))
    write_file(work / ENGINE_CONFIG, engine_yml)
    # What every page's chrome depends on (a change makes the engine's build a clean one),
    # and the pages every build renders (they are indexed for search, or sum up everything).
    state.engine["chrome"] = _digest(engine_yml, code_digest(), _folder_digest(work / "theme"),
                                     _folder_digest(work / PAGES, docs))
    state.engine["always"] = sorted(always | {rel for rel in docs if rel.endswith(".md")})
    _write_api(work / API, state, model, renderer.page_urls, digests, done)
    state.write(work / STATE)
    return done


# --- pages ----------------------------------------------------------------------------------

def _groups(model: SiteModel, renderer: Renderer, digests: Mapping[FileKey, str],
            ) -> Iterator[tuple[str, str, Callable[[], Iterator[GeneratedPage]]]]:
    """(group id, input digest, how to render it) of every cacheable page group: a table
    page and its parts depend on its catalog files and its driver's Falco releases; a
    coverage page on its target's files and the driver order."""
    by_target: dict[str, list[tuple[FileKey, str]]] = defaultdict(list)
    for key, digest in digests.items():
        by_target[key[2]].append((key, digest))
    for page in table_pages(model):
        files = sorted((k, d) for k, d in by_target[page.target] if k[0] == page.driver_version)
        yield (f"table/{page.driver_version}/{page.target}", _digest(files, page.falco),
               partial(renderer.table, page))
    for coverage in coverage_pages(model):
        yield (f"coverage/{coverage.target}",
               _digest(sorted(by_target[coverage.target]), model.order),
               partial(renderer.coverage, coverage))


def _fixed_pages(model: SiteModel, renderer: Renderer) -> Iterator[GeneratedPage]:
    """Pages rendered on every run: they sum up the whole catalog and are few."""
    yield renderer.home()
    yield renderer.drivers_index()
    yield renderer.targets_index()
    yield from renderer.failures()
    for driver in model.drivers:
        yield renderer.driver(driver.version)


def _write_pages(source: SiteSource, work: Path, state: _State, model: SiteModel,
                 renderer: Renderer, digests: Mapping[FileKey, str],
                 done: Generated) -> tuple[set[str], set[str]]:
    """Every page written or kept; the second set: the pages rendered on every run."""
    pages = work / PAGES
    written: set[str] = set()

    def write(page: GeneratedPage) -> None:
        done.pages += 1
        done.pages_rendered += 1
        if write_file(pages / page.src_uri, page_source(page)):
            done.pages_written += 1
            done.changed_pages.append(page.src_uri)
        written.add(page.src_uri)

    for page in _fixed_pages(model, renderer):
        write(page)
    always = set(written)
    groups: dict[str, dict[str, Any]] = {}
    for group, digest, render in _groups(model, renderer, digests):
        before = state.groups.get(group)
        if before and before.get("digest") == digest and all(
                (pages / uri).is_file() for uri in before.get("pages", [])):
            groups[group] = before
            written.update(before["pages"])
            done.pages += len(before["pages"])
            continue
        made = list(render())
        for page in made:
            write(page)
        groups[group] = {"digest": digest, "pages": [p.src_uri for p in made]}
    state.groups = groups
    return written, always


def _folder_digest(folder: Path, only: Iterable[str] | None = None) -> str:
    hasher = hashlib.sha256()
    names = sorted(only) if only is not None else sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    for rel in names:
        hasher.update(rel.encode() + b"\0" + (folder / rel).read_bytes() + b"\0")
    return hasher.hexdigest()


def _copy_docs(source: SiteSource, pages: Path, generated: set[str],
               done: Generated) -> set[str]:
    """docs/ as it is (pages, images...); a file at a generated page's path is refused."""
    copied: set[str] = set()
    if not source.docs_dir.is_dir():
        return copied
    for path in sorted(source.docs_dir.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in
                                     path.relative_to(source.docs_dir).parts):
            continue
        rel = path.relative_to(source.docs_dir).as_posix()
        if rel in generated or rel.startswith(layout.ASSETS_DIR + "/"):
            raise InputError(f"{path}: clashes with a page the site generates ({rel})",
                             hint="remove or rename it; generated pages come from the catalog")
        if write_file(pages / rel, path.read_bytes()):
            done.changed_pages.append(rel)
        copied.add(rel)
    return copied


def _copy_assets(work: Path, done: Generated) -> set[str]:
    copied: set[str] = set()
    for name in layout.ASSETS:
        rel = layout.asset(name)
        write_file(work / PAGES / rel, (ASSETS / name).read_bytes())
        copied.add(rel)
    for path in sorted(THEME.iterdir()):
        if path.is_file():
            write_file(work / "theme" / path.name, path.read_bytes())
    return copied


def _remove_stale(folder: Path, stale: Iterable[str]) -> int:
    removed = 0
    for rel in stale:
        target = folder / rel
        if target.is_file():
            target.unlink()
            removed += 1
            _prune_empty(target.parent, folder)
    return removed


def _prune_empty(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


# --- the API --------------------------------------------------------------------------------

def _write_api(root: Path, state: _State, model: SiteModel, page_urls: Mapping[str, str],
               digests: Mapping[FileKey, str], done: Generated) -> None:
    """Each driver version's files when its catalog folder changed; the files spanning
    driver versions always (written where their bytes changed); stale files removed."""
    keep: set[str] = set()
    entries: dict[str, dict[str, Any]] = {}
    for driver in model.order:
        served = tuple(str(f) for f in model.releases.falco_for(driver))
        digest = _digest(sorted((k, d) for k, d in digests.items() if k[0] == driver), served)
        before = state.api.get(driver)
        if before and before.get("digest") == digest and all(
                (root / rel).is_file() for rel in before.get("files", [])):
            entries[driver] = before
            keep.update(before["files"])
            done.api_files += len(before["files"])
            continue
        made = []
        for path, text in api.driver_documents(driver, served, list(model.files_of(driver))):
            rel = path.removeprefix(API + "/")
            done.api_written += write_file(root / rel, text)
            made.append(rel)
        entries[driver] = {"digest": digest, "files": made}
        keep.update(made)
        done.api_files += len(made)
    state.api = entries
    for path, text in _site_documents(model, page_urls):
        rel = path.removeprefix(API + "/")
        done.api_written += write_file(root / rel, text)
        keep.add(rel)
        done.api_files += 1
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    done.removed += _remove_stale(root, present - keep)


def _site_documents(model: SiteModel, page_urls: Mapping[str, str],
                    ) -> Iterator[tuple[str, str]]:
    yield layout.API_INDEX, api.dumps(api.index_document(model, page_urls)) + "\n"
    yield from api.site_documents(model)


def write_site_api(site_dir: Path, model: SiteModel, page_urls: Mapping[str, str]) -> None:
    """api/index.json and the files spanning driver versions, under `site_dir`."""
    for path, text in _site_documents(model, page_urls):
        write_file(site_dir / path, text)


def remove_work(work: Path) -> None:
    """Forget everything generated (the next run renders every page again)."""
    if work.is_dir():
        shutil.rmtree(work)
