/*
 * Filtering, sorting and copy buttons for the site's big tables.
 *
 * A table marked data-fp-table has a form data-fp-filter="<table id>": a text box
 * (name filter: every word must occur in the row) and selects whose data-attr names a
 * row attribute holding space-separated tokens (data-arch="x86_64",
 * data-show="missing failed"). Header cells data-sort="order|natural|num|text" sort
 * on click. The state lives in the query string (?filter=..&arch=..&sort=2&desc=1; not "q", which Material's search takes), so
 * the address bar is always a permalink to the current view.
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

  // --- natural order, as builder.catalog.natural_key ------------------------------------

  function naturalParts(text) {
    return (text.match(/\d+|\D+/g) || []).map(function (p) {
      return /^\d+$/.test(p) ? [parseInt(p, 10), ""] : [-1, p];
    });
  }

  function compareNatural(a, b) {
    var pa = naturalParts(a);
    var pb = naturalParts(b);
    for (var i = 0; i < Math.min(pa.length, pb.length); i += 1) {
      if (pa[i][0] !== pb[i][0]) { return pa[i][0] - pb[i][0]; }
      if (pa[i][1] !== pb[i][1]) { return pa[i][1] < pb[i][1] ? -1 : 1; }
    }
    if (pa.length !== pb.length) { return pa.length - pb.length; }
    return a < b ? -1 : (a > b ? 1 : 0);
  }

  // --- one filterable, sortable table ---------------------------------------------------

  function setUp(form) {
    var table = document.getElementById(form.getAttribute("data-fp-filter"));
    if (!table || !table.tBodies.length) { return; }
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var texts = rows.map(function (row) { return row.textContent.toLowerCase(); });
    var order = new Map(rows.map(function (row, i) { return [row, i]; }));
    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var count = form.querySelector(".fp-count");
    var permalink = form.querySelector(".fp-permalink");
    var selects = Array.prototype.slice.call(form.querySelectorAll("select[data-attr]"));
    var query = form.querySelector("input[name=filter]");
    var sort = { column: -1, desc: false };

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

    function filter() {
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
        row.hidden = !visible;
        if (visible) { shown += 1; }
      });
      if (count) {
        count.textContent = shown === rows.length ? rows.length + " rows" :
          shown + " of " + rows.length + " rows";
      }
    }

    function cellValue(row, column, kind) {
      var cell = row.cells[column];
      if (!cell) { return ""; }
      if (kind === "num") {
        var raw = cell.getAttribute("data-v");
        return parseFloat(raw === null ? cell.textContent : raw) || 0;
      }
      return cell.textContent;
    }

    function applySort() {
      headers.forEach(function (th, i) {
        if (!th.hasAttribute("data-sort")) { return; }
        th.setAttribute("aria-sort", i === sort.column ?
          (sort.desc ? "descending" : "ascending") : "none");
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
      var fragment = document.createDocumentFragment();
      keyed.forEach(function (pair) { fragment.appendChild(pair[0]); });
      body.appendChild(fragment);
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

    readState();
    filter();
    if (sort.column >= 0) { applySort(); }
    writeState();
    table.setAttribute("data-fp-ready", "1");
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-fp-filter]"), setUp);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
