/*
 * Filtering, sorting and copy buttons for the site's big tables.
 *
 * A table (or a box of block tables) marked data-fp-table has a form
 * data-fp-filter="<its id>": a text box (every word must occur in the row, its digest
 * or its other names) and selects whose data-attr names a row attribute holding
 * space-separated tokens (data-arch="x86_64", data-show="missing failed"). Header cells
 * data-sort="order|natural|num|text" sort on click. The state lives in the query
 * string (?filter=..&arch=..&sort=2&desc=1; not "q", which Material's search takes),
 * so the address bar is always a permalink to the current view.
 */
(function () {
  "use strict";

  // --- copy buttons (also used by find.js) --------------------------------------------

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);  // plain-http mirrors have no Clipboard API
  }

  function textToCopy(button) {
    if (button.hasAttribute("data-copy")) { return button.getAttribute("data-copy"); }
    var source = button.previousElementSibling;
    return source ? source.textContent : "";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".fp-copy") : null;
    if (!button) { return; }
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    copyText(textToCopy(button)).then(function () {
      button.textContent = "copied";
      button.classList.add("fp-copied");
    }, function () {
      button.textContent = "select and copy";
    });
    window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("fp-copied");
    }, 1500);
  });
  window.FalcoProbesCopy = copyText;

  // A build log published beside its probe (its URL + .log): the row's "log" link points
  // at #logs (the sentence that says so) until it is hovered, touched or focused, when
  // it gets its address from the probe's link; a link followed before that still goes.
  function logLink(event) {
    var link = event.target.closest ? event.target.closest("a.fp-log") : null;
    var row = link && link.closest("tr");
    var probe = row && row.querySelector("a[href]:not(.fp-log)");
    if (!probe) { return null; }
    link.href = probe.href + ".log";
    return link;
  }
  document.addEventListener("focusin", logLink);
  document.addEventListener("pointerover", logLink);
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.fp-log[href='#logs']") : null;
    if (link && logLink(event)) {
      event.preventDefault();
      window.location.href = link.href;
    }
  });

  // Natural order (5.10.9 before 5.10.10), as builder.core.catalog.natural_key: lookup.js.
  var compareNatural = window.FalcoProbesLookup.compareNatural;

  // --- one filterable, sortable table ---------------------------------------------------

  /* The container is a table, or a box of blocks: small tables of consecutive rows
     sharing one set of columns (builder/site/templates/blocks.html.j2), which the
     browser lays out only near the screen. Rows are filtered and sorted across all of
     them; sorting fills the blocks in the new order, keeping each block's size. */
  function setUp(form) {
    var container = document.getElementById(form.getAttribute("data-fp-filter"));
    if (!container) { return; }
    var first = container.tagName === "TABLE" ? container : container.querySelector("table");
    if (!first || !first.tBodies.length || !first.tHead) { return; }
    var headers = Array.prototype.slice.call(first.tHead.rows[0].cells);
    var count = form.querySelector(".fp-count");
    var permalink = form.querySelector(".fp-permalink");
    var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-attr]"));
    var query = form.querySelector("input[name=filter]");
    var sort = { column: -1, desc: false };
    // Built on the first filter or sort, not at load: a big page is ready sooner.
    var tables, bodies, sizes, rows, texts, order;

    function prepare() {
      if (rows) { return; }
      tables = container.tagName === "TABLE" ? [container] :
        Array.prototype.slice.call(container.querySelectorAll("table"));
      bodies = tables.map(function (table) { return table.tBodies[0]; });
      sizes = bodies.map(function (body) { return body.rows.length; });
      rows = [];
      bodies.forEach(function (body) { rows = rows.concat(Array.prototype.slice.call(body.rows)); });
      texts = rows.map(function (row) {
        var extra = [row.getAttribute("data-also") || ""];
        Array.prototype.forEach.call(row.querySelectorAll("[data-copy]"), function (node) {
          extra.push(node.getAttribute("data-copy"));
        });
        return (row.textContent + " " + extra.join(" ")).toLowerCase();
      });
      order = new Map(rows.map(function (row, i) { return [row, i]; }));
    }

    function readState() {
      var params = new URLSearchParams(window.location.search);
      query.value = params.get("filter") || "";
      selects.forEach(function (select) {
        var value = params.get(select.name) || "";
        var known = Array.prototype.some.call(select.options, function (o) {
          return o.value === value;
        });
        select.value = known ? value : "";
      });
      var column = parseInt(params.get("sort") || "", 10);
      sort.column = column >= 0 && column < headers.length &&
        headers[column].hasAttribute("data-sort") ? column : -1;
      sort.desc = params.get("desc") === "1";
    }

    function writeState() {
      var params = new URLSearchParams(window.location.search);
      var set = function (key, value) {
        if (value) { params.set(key, value); } else { params.delete(key); }
      };
      set("filter", query.value.trim());
      selects.forEach(function (select) { set(select.name, select.value); });
      set("sort", sort.column >= 0 ? String(sort.column) : "");
      set("desc", sort.column >= 0 && sort.desc ? "1" : "");
      var search = params.toString();
      var url = window.location.pathname + (search ? "?" + search : "") + window.location.hash;
      window.history.replaceState(null, "", url);
      if (permalink) { permalink.href = url; }
    }

    /* A block with no visible row is hidden (the first keeps the visible header). */
    function hideEmptyBlocks() {
      tables.forEach(function (table, i) {
        if (i === 0 || container === table) { return; }
        var visible = Array.prototype.some.call(table.tBodies[0].rows, function (row) {
          return !row.hidden;
        });
        var block = table.parentNode;
        block.hidden = !visible;
      });
    }

    function filter() {
      prepare();
      var words = query.value.toLowerCase().split(/\s+/).filter(Boolean);
      var wanted = selects.map(function (s) { return [s.getAttribute("data-attr"), s.value]; });
      var shown = 0;
      rows.forEach(function (row, i) {
        var visible = words.every(function (w) { return texts[i].indexOf(w) >= 0; }) &&
          wanted.every(function (pair) {
            if (!pair[1]) { return true; }
            var tokens = (row.getAttribute("data-" + pair[0]) || "").split(" ");
            return tokens.indexOf(pair[1]) >= 0;
          });
        if (row.hidden === visible) { row.hidden = !visible; }
        if (visible) { shown += 1; }
      });
      hideEmptyBlocks();
      if (count) {
        count.textContent = shown === rows.length ? rows.length.toLocaleString("en-US") + " rows" :
          shown.toLocaleString("en-US") + " of " + rows.length.toLocaleString("en-US") + " rows";
      }
    }

    function cellValue(row, column, kind) {
      var cell = row.cells[column];
      if (!cell) { return ""; }
      if (kind === "num") {
        var raw = cell.getAttribute("data-v");
        return parseFloat(raw === null ? cell.textContent.replace(/,/g, "") : raw) || 0;
      }
      return cell.textContent;
    }

    function applySort() {
      prepare();
      headers.forEach(function (th, i) {
        if (!th.hasAttribute("data-sort")) { return; }
        var natural = sort.column < 0 && th.getAttribute("data-sort") === "order";
        th.setAttribute("aria-sort", i === sort.column ?
          (sort.desc ? "descending" : "ascending") : (natural ? "ascending" : "none"));
      });
      var column = sort.column;
      var kind = column >= 0 ? headers[column].getAttribute("data-sort") : "order";
      var sign = sort.desc ? -1 : 1;
      var keyed = rows.map(function (row) {
        return [row, kind === "order" ? order.get(row) : cellValue(row, column, kind)];
      });
      keyed.sort(function (a, b) {
        var result;
        if (kind === "order" || kind === "num") { result = a[1] - b[1]; }
        else if (kind === "natural") { result = compareNatural(a[1], b[1]); }
        else { result = a[1] < b[1] ? -1 : (a[1] > b[1] ? 1 : 0); }
        return sign * result || order.get(a[0]) - order.get(b[0]);
      });
      // Refill the blocks in the new order; captions name kernel series, which only
      // hold in the natural order.
      var next = 0;
      bodies.forEach(function (body, b) {
        var fragment = document.createDocumentFragment();
        for (var k = 0; k < sizes[b]; k += 1) { fragment.appendChild(keyed[next + k][0]); }
        next += sizes[b];
        body.appendChild(fragment);
        var caption = tables[b].caption;
        if (caption) { caption.hidden = kind !== "order" || sort.desc; }
      });
      hideEmptyBlocks();
    }

    headers.forEach(function (th, i) {
      var button = th.querySelector(".fp-sort");
      if (!button) { return; }
      button.addEventListener("click", function () {
        if (sort.column === i) { sort.desc = !sort.desc; } else { sort.column = i; sort.desc = false; }
        applySort();
        writeState();
      });
    });
    form.addEventListener("input", function () { filter(); writeState(); });
    form.addEventListener("change", function () { filter(); writeState(); });
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    window.addEventListener("popstate", function () { readState(); filter(); applySort(); });
    // The count of the unfiltered table comes with the page (the form's data-rows).

    readState();
    if (query.value || selects.some(function (s) { return s.value; })) { filter(); }
    if (sort.column >= 0) { applySort(); }
    writeState();
    container.setAttribute("data-fp-ready", "1");
  }

  // --- the theme's script, on demand (bulk pages; see builder/site/theme/main.html) -----

  var WAKE = ["pointerdown", "keydown", "touchstart", "wheel", "focusin"];

  function themeOnDemand() {
    var slot = document.querySelector("script[data-fp-on-demand]");
    if (!slot) { return; }
    function load() {
      WAKE.forEach(function (name) { window.removeEventListener(name, load, true); });
      var script = document.createElement("script");
      script.src = slot.getAttribute("data-src");
      document.body.appendChild(script);
    }
    WAKE.forEach(function (name) {
      window.addEventListener(name, load, { capture: true, passive: true });
    });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-fp-filter]"), setUp);
    themeOnDemand();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
