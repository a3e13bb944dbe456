"""The probe index site: an MkDocs plugin that renders the catalog.

Takes: the catalog (read only) and the Falco releases table. Gives: the site's pages,
its JSON API, SHA256SUMS and the find-my-probe lookup.

- `layout`: where every page and API file lives in the built site;
- `model`: pure page models built from a loaded catalog and the Falco releases table;
- `api`: the machine-readable documents (index.json, probe lists, SHA256SUMS,
  the find-my-probe lookup shards), pure as well;
- `charts`: geometry of the build-time SVG charts;
- `render`: Jinja2 templates (autoescaped) turning models into HTML, and the
  splitting of bulk tables into pages that stay under the size budget;
- `plugin`: the MkDocs edge (registered as the `falco-probes` plugin).

See docs/site.md.
"""
